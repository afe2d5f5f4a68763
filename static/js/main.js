// The main page's wiring: fetch the server's schema, create the store, mount the views on it, and
// connect the live stream. Nothing is decided here; each view redraws from the store.
import * as api from "./api.js";
import { createChecker } from "./checker.js";
import { mountCurves } from "./curves.js";
import { $ } from "./dom.js";
import { mountPanels } from "./form.js";
import { mountGrid } from "./grid.js";
import { mountPad } from "./pad.js";
import { mountRunLog } from "./runlog.js";
import { connect } from "./socket.js";
import { Store } from "./store.js";
import { mountSync } from "./sync.js";
import { mountTrainBar } from "./trainbar.js";

function showConnection(text) {
  $("#connection").textContent = text;
  $("#connection").dataset.state = text;
}

async function start() {
  let schema;
  try {
    schema = await api.getSchema();
  } catch (err) {
    showConnection(`disconnected: ${err.message}`);
    return;
  }
  const store = new Store(schema.events);
  mountPanels(store, schema, createChecker(store));
  mountRunLog(store);
  mountCurves(store);
  mountTrainBar(store);
  mountPad(store);
  mountGrid(store);
  mountSync(store);
  store.subscribe(({ kind }) => {
    if (kind === "ready") document.body.dataset.ready = "true"; // what tests and a reload wait for
  });
  connect(Object.keys(schema.events.to_client), store, showConnection);
}

start();
