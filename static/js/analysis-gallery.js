// View of "only one got it right": the test images exactly one run classifies correctly, each
// with both runs' answers and confidences.

import { $, el } from "./dom.js";
import { int, pct } from "./format.js";
import { errorText, message, thumb } from "./analysis-parts.js";
import { SLOTS, aName, nameOf, watch } from "./analysis-store.js";

function answer(state, slot, pred, conf, label) {
  const right = pred === label;
  return el("span", { class: `guess slot-${slot} ${right ? "right" : "wrong"}`, text: `${slot.toUpperCase()} ${nameOf(state, slot, pred)} ${pct(conf, 0)}` });
}

export function mountGallery(store) {
  watch(store, (s) => [s.compare], (state) => {
    const { compare, ids } = state;
    if (!compare) return;
    const section = $(".gallery");
    if (compare.pending || compare.needsBoth) {
      for (const slot of SLOTS) $(`#only-${slot}`).replaceChildren();
      for (const h of section.querySelectorAll(".only-title")) h.textContent = `Only ${h.closest(".only").dataset.slot.toUpperCase()} right`;
      if (compare.needsBoth) message(section, "The gallery needs both analyses.");
      return;
    }
    if (compare.error) {
      const { error } = compare;
      const slot = SLOTS.find((s) => error.message.includes(`'${ids[s]}'`)) ?? (error.field === "b" ? "b" : "a");
      message(section, errorText(ids, slot, error), error.message);
      return;
    }
    message(section, "");
    for (const slot of SLOTS) showOnly(state, section, slot);
  });
}

function showOnly(state, section, slot) {
  const data = state.compare.value;
  const items = data[`only_${slot}`], total = data[`count_only_${slot}`];
  const heading = $(`.only[data-slot="${slot}"] .only-title`, section);
  heading.textContent = `Only ${slot.toUpperCase()} right: ${int(total)} image${total === 1 ? "" : "s"}${items.length < total ? ` (first ${items.length} shown)` : ""}`;
  const box = $(`#only-${slot}`);
  box.replaceChildren();
  const name = (s, label) => nameOf(state, s, label);
  for (const item of items) {
    const answers = el("span", { class: "answers" }, answer(state, "a", item.pred_a, item.conf_a, item.label), answer(state, "b", item.pred_b, item.conf_b, item.label));
    const title = `test image ${item.index}, ${aName(name("a", item.label))}: A says ${name("a", item.pred_a)} (${pct(item.conf_a, 1)}), B says ${name("b", item.pred_b)} (${pct(item.conf_b, 1)})`;
    box.append(thumb(item.image, `true ${name("a", item.label)}`, answers, title));
  }
  if (!items.length) box.append(el("p", { class: "hint", text: "None." }));
}
