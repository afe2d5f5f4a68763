// The main page's wiring: fetch the server's schema, create the store, mount the views on it, and
// connect the live stream. Nothing is decided here; each view redraws from the store.
import * as api from "./api.js";
import { createChecker } from "./checker.js";
import { mountCurves } from "./curves.js";
import { mountDatasets } from "./datasets-view.js";
import { $ } from "./dom.js";
import { mountPanels } from "./form.js";
import { mountGrid } from "./grid.js";
import { mountPad } from "./pad.js";
import { mountRunLog } from "./runlog.js";
import { connect } from "./socket.js";
import { Store } from "./store.js";
import { mountSync, mountVerdict } from "./sync.js";
import { mountTrainBar } from "./trainbar.js";
import { mountUpload } from "./upload.js";

function showConnection(text) {
  $("#connection").textContent = text;
  $("#connection").dataset.state = text;
}

/** The schema, asked again (1 s, 2 s, … up to 10 s apart) until the server answers: the page is built from it. */
async function loadSchema() {
  for (let wait = 1000; ; wait = Math.min(2 * wait, 10_000)) {
    try {
      return await api.getSchema();
    } catch (err) {
      showConnection(`cannot load the form: ${err.message} Trying again…`);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

async function start() {
  const schema = await loadSchema();
  const store = new Store(schema.events, schema.defaults.a);
  mountPanels(store, schema, createChecker(store));
  mountRunLog(store);
  mountCurves(store);
  mountTrainBar(store);
  mountPad(store);
  const upload = mountUpload(store);
  mountGrid(store, { onPick: upload.showPicked }); // a clicked test image is classified by the upload's view
  mountDatasets(store);
  mountSync(store);
  mountVerdict(store); // the shown group's verdict, once its runs have ended
  store.subscribe(({ kind }) => {
    if (kind === "ready") document.body.dataset.ready = "true"; // what tests and a reload wait for
  });
  connect(Object.keys(schema.events.to_client), store, showConnection);
}

start();
