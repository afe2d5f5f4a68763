// The config panels A and B, built from the server's schema: a field per property, its help as the
// hint, string choices as a select and number choices as typed suggestions; presets from the schema.
// Edits go to the checker as typed; the store's check results come back under the fields.
import { $, el } from "./dom.js";
import { count, int } from "./format.js";
import { SLOTS } from "./store.js";

/** A config value as the form shows it: [16, 32, 64] -> "16-32-64", null -> "". */
export function formValue(value) {
  if (Array.isArray(value)) return value.join("-");
  return value === null || value === undefined ? "" : String(value);
}

const typeOf = (prop) => prop.type ?? prop.anyOf?.find((t) => t.type !== "null")?.type;
const allowsNull = (prop) => prop.anyOf?.some((t) => t.type === "null") ?? false;

/** The input (and its suggestions) for one property of the schema. */
function controls(id, prop) {
  const choices = prop.enum ?? [];
  if (choices.length && choices.every((c) => typeof c === "string")) {
    return [el("select", { id, name: id }, ...choices.map((c) => new Option(c, c)))];
  }
  const input = el("input", { id, name: id, type: "text", autocomplete: "off", spellcheck: false });
  const type = typeOf(prop);
  if (type === "integer") input.inputMode = "numeric";
  if (type === "number") input.inputMode = "decimal";
  if (allowsNull(prop)) input.placeholder = "all";
  const bounds = prop.anyOf?.find((t) => t.type !== "null") ?? prop;
  if (bounds.minimum !== undefined && bounds.maximum !== undefined) input.title = `${bounds.minimum} to ${bounds.maximum}`;
  if (!choices.length) return [input];
  // typed, not picked: what a user types ("5.0") is what the server is asked about
  const list = el("datalist", { id: `${id}-choices` }, ...choices.map((c) => new Option(String(c), String(c))));
  input.setAttribute("list", list.id);
  return [input, list];
}

/** The hint under a field: its help and, for a typed box, what the server allows ("must be " dropped). */
function hintText(prop, rule, input) {
  const allowed = input.tagName === "SELECT" || !rule ? "" : rule.replace(/^must be /, "");
  return [prop.description, allowed].filter(Boolean).join(" · ");
}

function buildField(panel, slot, name, prop, rule) {
  const id = `${slot}-${name}`;
  const [input, ...extra] = controls(id, prop);
  const text = hintText(prop, rule, input);
  const hint = text ? el("small", { id: `${id}-hint`, text }) : null;
  const message = el("p", { class: "message field-message", id: `${id}-message`, "aria-live": "polite" });
  input.setAttribute("aria-describedby", hint ? `${hint.id} ${message.id}` : message.id);
  const label = el("label", { htmlFor: id, text: name });
  const box = el("div", { class: "field", "data-field": name }, label, input, ...extra, ...(hint ? [hint] : []), message);
  panel.inputs[name] = input;
  panel.hints[name] = hint;
  panel.messages[name] = message;
  return box;
}

function renderCheck(panel, check) {
  const errors = check.state === "invalid" ? (check.errors ?? {}) : {};
  for (const [name, input] of Object.entries(panel.inputs)) {
    const rule = errors[name] ?? "";
    panel.messages[name].textContent = rule;
    input.setAttribute("aria-invalid", rule ? "true" : "false");
    const hint = panel.hints[name];
    if (hint) hint.hidden = Boolean(rule); // the rule takes the hint's place, for the eye and the ear
    const message = panel.messages[name].id;
    input.setAttribute("aria-describedby", hint && !rule ? `${hint.id} ${message}` : message);
  }
  const { params, macs } = panel;
  params.setAttribute("aria-busy", String(Boolean(check.pending)));
  params.dataset.params = check.state === "valid" ? String(check.params) : "";
  macs.textContent = check.state === "valid" ? `${count(check.macs)} MACs per image` : "";
  if (check.state === "valid") params.textContent = `${int(check.params)} parameters`;
  else if (check.state === "offline") params.textContent = "parameters: not checked, the server cannot be reached";
  else if (check.state === "invalid") {
    // a rule about something that has no field here (the body, say) is said in full
    const elsewhere = Object.entries(errors).filter(([name]) => !panel.inputs[name]);
    const fix = elsewhere.length ? elsewhere.map(([name, rule]) => `${name} ${rule}`).join("; ") : "fix the marked field";
    params.textContent = `parameters: ${fix}`;
  }
}

/** Builds both panels and the one-click pair button; check(slot, values) asks the server. */
export function mountPanels(store, schema, check) {
  const panels = {};
  const read = (slot) => Object.fromEntries(schema.fields.map((n) => [n, panels[slot].inputs[n].value]));
  const setValues = (slot, values) => {
    for (const [name, value] of Object.entries(values)) {
      if (panels[slot].inputs[name]) panels[slot].inputs[name].value = formValue(value);
    }
    check(slot, read(slot));
  };

  for (const slot of SLOTS) {
    const root = $(`#panel-${slot}`);
    root.append($("#panel-template").content.cloneNode(true));
    const panel = { inputs: {}, hints: {}, messages: {}, params: $(".params", root), macs: $(".macs", root) };
    panels[slot] = panel;
    const fields = $(".fields", root);
    for (const name of schema.fields) {
      fields.append(buildField(panel, slot, name, schema.config.properties[name], schema.rules?.[name]));
      panel.inputs[name].addEventListener("input", () => check(slot, read(slot)));
    }
    const preset = $(".preset", root);
    preset.id = `${slot}-preset`;
    $(".preset-label", root).htmlFor = preset.id;
    for (const [key, p] of Object.entries(schema.presets)) preset.append(new Option(p.label, key));
    preset.addEventListener("change", () => {
      if (!preset.value) return;
      setValues(slot, schema.presets[preset.value].values);
      preset.value = ""; // a preset is an action, not a state: the fields say what is set
    });
  }

  // "Classic pair: 16-32-64 vs 8-8-8": A gets the pair's first preset, B its second
  const pair = schema.pair.map((key) => schema.presets[key].values);
  const button = $("#preset-pair");
  const first = (values) => formValue(Object.values(values)[0]);
  const name = schema.pair[0];
  button.textContent = `${name[0].toUpperCase()}${name.slice(1)} pair: ${first(pair[0])} vs ${first(pair[1])}`;
  button.addEventListener("click", () => SLOTS.forEach((slot, i) => setValues(slot, pair[i])));

  store.subscribe((change) => {
    if (change.kind === "check") renderCheck(panels[change.slot], store.checks[change.slot]);
    // the server answers again (a check went through, or history came on a reconnect): ask it about
    // any panel it could not be asked about
    const back = change.kind === "ready" || (change.kind === "check" && store.checks[change.slot].state === "valid");
    if (back) for (const slot of SLOTS) if (store.checks[slot].state === "offline") check(slot, read(slot), true);
    if (change.kind === "reset") {
      // the panels show how the shown runs were configured
      for (const slot of SLOTS) if (store.runs[slot]) setValues(slot, store.runs[slot].config);
    }
  });
  for (const slot of SLOTS) setValues(slot, schema.defaults[slot]);
}
