// Small pieces the analysis page's views share: a section's message line, API errors phrased for
// a person, and a captioned thumbnail of a test image.

import { $, el } from "./dom.js";
import { paintImage } from "./canvas.js";
import { SLOTS } from "./analysis-store.js";

/** Shows a sentence in a section's message line; `detail` (the server's own words) goes in its title. */
export function message(root, text, detail = "") {
  const box = root.matches(".message, .verdict-line") ? root : $(".message", root);
  if (!box) return;
  box.textContent = text || "";
  if (detail && detail !== text) box.title = `The server said: ${detail}`;
  else box.removeAttribute("title");
}

/**
 * An API error about the run in a slot, phrased for a person: "Run A (zzz) does not exist; pick
 * another run above." The server's sentences name fields and ids ("run_id: no run with id 'zzz'");
 * showErrors() keeps them in the message's title.
 */
export function errorText(ids, slot, error) {
  const id = ids[slot], who = `Run ${slot.toUpperCase()}${id ? ` (${id})` : ""}`;
  const said = String(error?.message ?? error ?? "");
  if (error?.status === 404 && /no run with id/.test(said)) return `${who} does not exist; pick another run above.`;
  if (error?.status === 0) return `${who} could not be loaded: the server cannot be reached; is it still running?`;
  if (!id) return `Choose run ${slot.toUpperCase()} above.`;
  // 409s are sentences already ("Run <id> is still running; …"): name the slot as well as the id
  const escaped = id.replace(/[.*+?^$()|[\]{}\\]/g, "\\$&");
  const named = said.replace(new RegExp(`\\b([Rr]un) ${escaped}(?![\\w-])`), `$1 ${slot.toUpperCase()} (${id})`);
  if (named !== said) return named;
  return `${who} could not be loaded: ${said.replace(/^[\w.[\]]+: /, "")}`;
}

/** errorText for each slot that has an error ({slot: error}), in one line, with the server's words for a title. */
export function showErrors(root, ids, errors, prefix = "") {
  const bad = SLOTS.filter((s) => errors[s]);
  const text = bad.map((s) => errorText(ids, s, errors[s])).join(" ");
  message(root, text ? prefix + text : "", bad.map((s) => `${s.toUpperCase()}: ${errors[s].message}`).join(" "));
}

/** A test image (C, H, W) with a caption: `top` in bold (its truth), `bottom` a string or an element. */
export function thumb(image, top, bottom, title) {
  const canvas = el("canvas");
  paintImage(canvas, image);
  const figure = el("figure", { class: "thumb", title }, canvas);
  const caption = el("figcaption");
  if (top) caption.append(el("span", { class: "truth", text: top }));
  if (bottom) caption.append(typeof bottom === "string" ? el("span", { text: bottom }) : bottom);
  figure.append(caption);
  return figure;
}
