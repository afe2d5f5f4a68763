// Page-level views of the analysis page: the two run pickers (which also keep the URL's ?a=&b=; a pick
// drops ?group=) with the page's message line, and body's data-dataset, data-named and data-ready flags.

import { $, el } from "./dom.js";
import { message } from "./analysis-parts.js";
import { SLOTS, classesOf, watch } from "./analysis-store.js";

/** A network in a few words: "resnet18", "conv 32-64 · linear 256" (a layer stack) or "16-32-64 k3". */
function network(c) {
  if (c.model) return c.model;
  if (!c.layers) return `${c.channels.join("-")} k${c.kernel_size}`;
  const outs = (type) => c.layers.filter((l) => l.type === type).map((l) => l.out).join("-");
  const parts = [["conv", outs("conv")], ["linear", outs("linear")]].filter(([, o]) => o).map(([t, o]) => `${t} ${o}`);
  return parts.join(" · ") || `${c.layers.length} layers`;
}

function describe(run) {
  const c = run.config;
  const when = new Date(run.created * 1000).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const state = run.analysis === "ready" ? "" : ` · ${run.status}, analysis ${run.analysis ?? "none"}`;
  return `${run.id} · ${network(c)} ${c.optimizer} lr ${c.lr} · ${c.epochs} ep${c.dataset === "mnist" ? "" : ` · ${c.dataset}`} · ${when}${state}`;
}

/** The analysed runs as options, plus the chosen id when it is not one of them (so the picker can show it). */
function options(runs, id) {
  const ready = [...runs.values()].filter((r) => r.analysis === "ready");
  const list = ready.map((r) => el("option", { value: r.id, text: describe(r) }));
  if (id && !ready.some((r) => r.id === id)) {
    const run = runs.get(id);
    list.unshift(el("option", { value: id, text: run ? describe(run) : `${id} · unknown run` }));
  }
  if (!list.length) list.push(el("option", { value: "", text: "no analysed runs yet" }));
  return list;
}

export function mountPickers(store) {
  const select = (slot) => $(`#run-${slot}`);
  for (const slot of SLOTS) select(slot).addEventListener("change", chosen);

  function chosen() {
    const ids = { a: select("a").value || null, b: select("b").value || null };
    const url = new URL(location.href);
    url.searchParams.delete("group"); // the pair now says which runs, and so which group, are shown
    for (const slot of SLOTS) {
      if (ids[slot]) url.searchParams.set(slot, ids[slot]);
      else url.searchParams.delete(slot);
    }
    history.replaceState(null, "", url);
    store.choose(ids);
  }

  // the options are built once, when the runs are listed; later choices only move the selection
  watch(store, (s) => [s.runs], ({ runs, ids }) => {
    if (runs) for (const slot of SLOTS) select(slot).replaceChildren(...options(runs, ids[slot]));
  });
  watch(store, (s) => [s.runs, s.ids], ({ runs, ids }) => {
    if (runs) for (const slot of SLOTS) select(slot).value = ids[slot] ?? "";
  });
  watch(store, (s) => [s.note], ({ note }) => message($(".pickers"), note));
}

/** Mount last: body[data-ready] must only appear once every other view has drawn the same state. */
export function mountStatus(store) {
  const body = document.body;
  watch(store, (s) => [s.dataset], ({ dataset }) => {
    if (dataset) body.dataset.dataset = dataset;
  });
  watch(store, (s) => [s.pair], (state) => {
    // class names as words (clothing, CIFAR-10, folders) need roomier thumbnails than digits
    if (state.pair) body.dataset.named = String(classesOf(state, "a").names.some((n) => n.length > 2));
  });
  watch(store, (s) => [s.ready], ({ ready }) => {
    if (ready) body.dataset.ready = ready;
    else body.removeAttribute("data-ready");
  });
}
