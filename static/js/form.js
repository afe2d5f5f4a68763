// The config panels A and B, built from the server's schema: a field per scalar property, its help as
// the hint, string choices as a select and number choices as typed suggestions; the dataset as a select
// of what the server lists; a nested object (augment) as a control per sub-field; and the architecture as
// one of the shorthand (channels + kernel_size), a layer stack (builder.js) or a named model. Presets from
// the schema. Edits go to the checker as typed; the store's check results come back under the fields, on
// the layer rows, in the diagram and on the learning-rate chart.
import { drawDiagram, LayerBuilder, layerTypes, resolve, typed } from "./builder.js";
import { $, el } from "./dom.js";
import { count, imageShape, int } from "./format.js";
import { LrPlanChart } from "./lrplan.js";
import { SLOTS } from "./store.js";

/** A config value as the form shows it: [16, 32, 64] -> "16-32-64", null -> "". */
export function formValue(value) {
  if (Array.isArray(value)) return value.join("-");
  return value === null || value === undefined ? "" : String(value);
}

const typeOf = (prop) => prop.type ?? prop.anyOf?.find((t) => t.type !== "null")?.type;
const allowsNull = (prop) => prop.anyOf?.some((t) => t.type === "null") ?? false;

// The three ways of naming a network: the classic shorthand's fields, a stack of `layers`, or one of the
// schema's named models (the values `model` takes).
const SHORTHAND = "shorthand", LAYERS = "layers";
const SHORTHAND_FIELDS = ["channels", "kernel_size"];
const namedModels = (prop) =>
  (prop?.anyOf ?? [prop ?? {}])
    .flatMap((t) => (t.const !== undefined ? [t.const] : (t.enum ?? [])))
    .filter((m) => m !== null);

/** The input (and its suggestions) for one scalar property of the schema. */
function controls(id, prop) {
  const choices = prop.enum ?? [];
  if (choices.length && choices.every((c) => typeof c === "string")) {
    return [el("select", { id, name: id }, ...choices.map((c) => new Option(c, c)))];
  }
  const input = el("input", { id, name: id, type: "text", autocomplete: "off", spellcheck: false });
  const type = typeOf(prop);
  if (type === "integer") input.inputMode = "numeric";
  if (type === "number") input.inputMode = "decimal";
  if (allowsNull(prop)) input.placeholder = prop.empty ?? "all"; // what an empty box means, as the schema says
  const bounds = prop.anyOf?.find((t) => t.type !== "null") ?? prop;
  if (bounds.minimum !== undefined && bounds.maximum !== undefined) input.title = `${bounds.minimum} to ${bounds.maximum}`;
  if (!choices.length) return [input];
  // typed, not picked: what a user types ("5.0") is what the server is asked about
  const list = el("datalist", { id: `${id}-choices` }, ...choices.map((c) => new Option(String(c), String(c))));
  input.setAttribute("list", list.id);
  return [input, list];
}

/** The hint under a field: its help and, for a typed box, what the server allows ("must be " dropped). */
function hintText(prop, rule, typedBox) {
  const allowed = !typedBox || !rule ? "" : rule.replace(/^must be /, "");
  return [prop.description, allowed].filter(Boolean).join(" · ");
}

/** A field's box: label (or group name), controls, hint and message. Returns the field:
 * {box, controls, hint, message, read(), write(value)}. */
function fieldBox(id, name, prop, rule, parts) {
  const { controls: inputs, extra = [], labelled = inputs[0], typedBox = false } = parts;
  const text = hintText(prop, rule, typedBox);
  const hint = text ? el("small", { id: `${id}-hint`, text }) : null;
  const message = el("p", { class: "message field-message", id: `${id}-message`, "aria-live": "polite" });
  const head = labelled
    ? el("label", { htmlFor: labelled.id, text: name })
    : el("span", { class: "label", id: `${id}-label`, text: name });
  const box = el("div", { class: "field", "data-field": name }, head, ...extra, ...(hint ? [hint] : []), message);
  if (!labelled) {
    box.setAttribute("role", "group");
    box.setAttribute("aria-labelledby", head.id);
  }
  const field = { box, controls: inputs, hint, message, read: parts.read, write: parts.write };
  describe(field, "");
  return field;
}

/** Points a field's controls at its hint and message; a rule takes the hint's place, for eye and ear. */
function describe(field, rule) {
  const { hint, message } = field;
  if (hint) hint.hidden = Boolean(rule);
  for (const input of field.controls) {
    input.setAttribute("aria-describedby", hint && !rule ? `${hint.id} ${message.id}` : message.id);
    input.setAttribute("aria-invalid", rule ? "true" : "false");
  }
}

function scalarField(slot, name, prop, rule) {
  const id = `${slot}-${name}`;
  const [input, ...extra] = controls(id, prop);
  return fieldBox(id, name, prop, rule, {
    controls: [input],
    extra: [input, ...extra],
    typedBox: input.tagName === "INPUT",
    read: () => input.value,
    write: (value) => (input.value = formValue(value)),
  });
}

/** "cifar10 (32×32 RGB, 10 classes)": a dataset as the server lists it. */
function datasetLabel(d) {
  const where = d.on_disk ? "" : ", downloaded on first use";
  return `${d.name} (${imageShape(d.shape)}, ${d.classes.length} classes${where})`;
}

/** The dataset: a select of what GET /api/datasets lists (the store holds the listing); a name not listed (yet, or
 * any more) stays as an option of its own, so the panel always says what it holds. */
function datasetField(slot, name, prop, rule) {
  const id = `${slot}-${name}`;
  const select = el("select", { id, name: id });
  const ensure = (value) => {
    if (value && ![...select.options].some((o) => o.value === value)) select.append(new Option(value, value));
  };
  const field = fieldBox(id, name, prop, rule, {
    controls: [select],
    extra: [select],
    read: () => select.value,
    write: (value) => {
      ensure(formValue(value));
      select.value = formValue(value);
    },
  });
  field.list = (datasets) => {
    const value = select.value;
    select.replaceChildren(...datasets.map((d) => new Option(datasetLabel(d), d.name)));
    ensure(value);
    select.value = value;
  };
  return field;
}

/** A nested object (augment): a number box per whole-number sub-field, a checkbox per true/false one;
 * read back as the object, {"crop": 4, "flip": true}. */
function nestedField(slot, name, prop, rule) {
  const id = `${slot}-${name}`;
  const parts = Object.entries(prop.properties ?? {}).map(([sub, p]) => {
    const subId = `${id}-${sub}`;
    if (p.type === "boolean") {
      const input = el("input", { id: subId, type: "checkbox", title: p.description ?? "" });
      const label = el("label", { class: "check", htmlFor: subId }, input, sub);
      return { sub, p, input, node: label, read: () => input.checked, write: (v) => (input.checked = Boolean(v)) };
    }
    const input = el("input", { id: subId, type: "number", title: p.description ?? "" });
    for (const key of ["minimum", "maximum"]) if (p[key] !== undefined) input[key.slice(0, 3)] = p[key];
    if (p.type === "integer") input.step = 1;
    const node = el("span", { class: "sub-field" }, el("label", { htmlFor: subId, text: sub }), input);
    return { sub, p, input, node, read: () => typed(input.value, p), write: (v) => (input.value = formValue(v)) };
  });
  return fieldBox(id, name, prop, rule, {
    controls: parts.map((x) => x.input),
    extra: [el("div", { class: "sub-fields" }, ...parts.map((x) => x.node))],
    labelled: null,
    read: () => {
      const value = {};
      for (const x of parts) {
        const v = x.read();
        if (v !== undefined) value[x.sub] = v;
      }
      return value;
    },
    write: (value) => {
      for (const x of parts) x.write(value?.[x.sub] ?? x.p.default);
    },
  });
}

/** "A trains on cifar10 and B on mnist: ...", where the panels' last checked datasets differ. */
function pairNote(store) {
  const datasets = SLOTS.map((s) => store.checks[s].config?.dataset);
  if (!datasets.every(Boolean) || new Set(datasets).size === 1) return "";
  const [a, b] = datasets;
  return `A trains on ${a} and B on ${b}: their accuracies cannot be compared.`;
}

function renderCheck(panel, check) {
  const errors = check.state === "invalid" ? (check.errors ?? {}) : {};
  for (const [name, field] of Object.entries(panel.fields)) {
    if (!field.message) continue; // layers: the builder shows its own
    const rule = errors[name] ?? "";
    field.message.textContent = rule;
    describe(field, rule);
  }
  panel.builder.render(check);
  drawDiagram(panel.diagram, check);
  if (check.state === "valid" && check.lrPlan && check.lrPlan !== panel.lrShown) {
    panel.lr.draw(check.lrPlan);
    panel.lrShown = check.lrPlan;
  }
  panel.lrBox.dataset.stale = String(check.state !== "valid" || Boolean(check.pending));
  const { params, macs } = panel;
  params.setAttribute("aria-busy", String(Boolean(check.pending)));
  params.dataset.params = check.state === "valid" ? String(check.params) : "";
  macs.textContent = check.state === "valid" ? `${count(check.macs)} MACs per image` : "";
  if (check.state === "valid") params.textContent = `${int(check.params)} parameters`;
  else if (check.state === "offline") params.textContent = "parameters: not checked, the server cannot be reached";
  else if (check.state === "invalid") {
    // a rule about something with no field shown here (the body, a hidden field) is said in full
    const elsewhere = Object.entries(errors).filter(([name]) => !panel.shows(name));
    const layer = Object.keys(errors).some((name) => name.startsWith("layers"));
    const marked = layer ? "fix the marked layer" : "fix the marked field";
    const said = elsewhere.map(([name, rule]) => `${name} ${rule}`).join("; ");
    params.textContent = `parameters: ${said || marked}`;
  }
}

/** One panel: its fields, architecture choice, builder, diagram and chart, in the template's slots. */
function buildPanel(root, slot, schema, types, edited) {
  const { properties } = schema.config;
  const panel = { fields: {}, params: $(".params", root), macs: $(".macs", root), mode: SHORTHAND };
  const fields = $(".fields", root);
  for (const name of schema.fields) {
    const prop = resolve(schema.config, properties[name]);
    const rule = schema.rules?.[name];
    if (name === "layers" || name === "model") continue; // the architecture, below
    let field;
    if (name === "dataset") field = datasetField(slot, name, prop, rule);
    else if (prop.type === "object" && prop.properties) field = nestedField(slot, name, prop, rule);
    else field = scalarField(slot, name, prop, rule);
    for (const input of field.controls) {
      const live = input.tagName === "SELECT" || input.type === "checkbox" ? "change" : "input";
      input.addEventListener(live, edited);
    }
    fields.append(field.box);
    panel.fields[name] = field;
  }

  // the architecture: a choice of the three ways, the builder for a stack
  const arch = $(".arch", root);
  const modes = [SHORTHAND, LAYERS, ...namedModels(properties.model)];
  const select = el("select", { id: `${slot}-architecture` }, ...modes.map((m) => new Option(m, m)));
  const hint = el("small", { id: `${slot}-architecture-hint` });
  const message = el("p", { class: "message field-message", id: `${slot}-model-message`, "aria-live": "polite" });
  arch.append(
    el(
      "div",
      { class: "field inline", "data-field": "model" },
      el("label", { htmlFor: select.id, text: "architecture" }),
      select,
    ),
    hint,
    message,
  );
  const builderBox = el("div", { class: "builder" });
  arch.append(builderBox);
  panel.builder = new LayerBuilder(builderBox, slot, types, edited);
  const described = {
    [SHORTHAND]: SHORTHAND_FIELDS.map((n) => `${n}: ${properties[n]?.description ?? ""}`).join("; "),
    [LAYERS]: properties.layers?.description ?? "",
  };
  panel.setMode = (mode) => {
    if (![...select.options].some((o) => o.value === mode)) select.append(new Option(mode, mode));
    panel.mode = select.value = mode;
    for (const name of SHORTHAND_FIELDS) if (panel.fields[name]) panel.fields[name].box.hidden = mode !== SHORTHAND;
    builderBox.hidden = mode !== LAYERS;
    hint.textContent = described[mode] ?? properties.model?.description ?? "";
    root.dataset.architecture = mode;
  };
  select.addEventListener("change", () => {
    panel.setMode(select.value);
    edited();
  });
  const named = () => ![SHORTHAND, LAYERS].includes(panel.mode);
  panel.fields.model = {
    box: arch,
    controls: [select],
    hint,
    message,
    read: () => (named() ? panel.mode : null),
    write: () => {}, // set with layers, by setMode
  };
  panel.fields.layers = {
    box: builderBox,
    read: () => (panel.mode === LAYERS ? panel.builder.value() : null),
    write: () => {}, // set with model, by setMode and the builder
  };
  // where an error can be shown: a field shown, a layer row, the builder
  panel.shows = (name) => {
    if (name.startsWith("layers")) return panel.mode === LAYERS;
    return Boolean(panel.fields[name]) && !panel.fields[name].box.hidden;
  };

  // a field the schema declares for some datasets only (image_size: "folder:") is shown, and sent, for those;
  // what was typed stays in its box for when such a dataset is picked again
  const dataset = panel.fields.dataset;
  const only = Object.entries(panel.fields).filter(([name]) => resolve(schema.config, properties[name])?.only_for);
  for (const [name, field] of only) {
    const applies = () => dataset.read().startsWith(resolve(schema.config, properties[name]).only_for);
    const read = field.read;
    field.read = () => (applies() ? read() : null);
    field.sync = () => (field.box.hidden = !applies());
  }
  panel.syncDataset = () => only.forEach(([, field]) => field.sync());
  dataset.controls[0].addEventListener("change", panel.syncDataset);

  panel.diagram = $(".diagram", root);
  panel.diagram.setAttribute("aria-label", `Diagram of model ${slot.toUpperCase()}`);
  const canvas = $(".lr-chart", root);
  canvas.setAttribute("aria-label", `Learning rate ${slot.toUpperCase()}`);
  panel.lrBox = $(".lr-box", root);
  panel.lr = new LrPlanChart(canvas, slot);
  panel.setMode(SHORTHAND);
  return panel;
}

/** Builds both panels and the one-click pair button; check(slot, values) asks the server. */
export function mountPanels(store, schema, check) {
  const panels = {};
  const types = layerTypes(schema.config);
  const read = (slot) => Object.fromEntries(schema.fields.map((n) => [n, panels[slot].fields[n].read()]));
  const setValues = (slot, values) => {
    const panel = panels[slot];
    for (const [name, value] of Object.entries(values)) panel.fields[name]?.write(value);
    panel.syncDataset();
    // a named model, else a stack, else the shorthand: what the values name (a preset names all three)
    if (values.model) panel.setMode(values.model);
    else if (Array.isArray(values.layers)) {
      panel.builder.set(values.layers);
      panel.setMode(LAYERS);
    } else if (["layers", "model", ...SHORTHAND_FIELDS].some((n) => n in values)) panel.setMode(SHORTHAND);
    check(slot, read(slot));
  };

  for (const slot of SLOTS) {
    const root = $(`#panel-${slot}`);
    root.append($("#panel-template").content.cloneNode(true));
    panels[slot] = buildPanel(root, slot, schema, types, () => check(slot, read(slot)));
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
  const pair = schema.pair.map((key) => schema.presets[key]);
  const button = $("#preset-pair");
  const short = ({ label, values }) =>
    values.model || values.layers || !values.channels ? label : formValue(values.channels);
  const name = schema.pair[0];
  button.textContent = `${name[0].toUpperCase()}${name.slice(1)} pair: ${short(pair[0])} vs ${short(pair[1])}`;
  button.addEventListener("click", () => SLOTS.forEach((slot, i) => setValues(slot, pair[i].values)));

  const listed = () => {
    if (store.datasets) for (const slot of SLOTS) panels[slot].fields.dataset?.list(store.datasets);
  };
  const note = $("#pair-note");
  store.subscribe((change) => {
    if (change.kind === "datasets") listed();
    if (change.kind === "check") {
      renderCheck(panels[change.slot], store.checks[change.slot]);
      const text = pairNote(store);
      if (note && note.textContent !== text) note.textContent = text;
    }
    // the server answers again (a check went through, or history came on a reconnect): ask it about
    // any panel it could not be asked about
    const back = change.kind === "ready" || (change.kind === "check" && store.checks[change.slot].state === "valid");
    if (back) for (const slot of SLOTS) if (store.checks[slot].state === "offline") check(slot, read(slot), true);
    if (change.kind === "reset") {
      // the panels show how the shown runs were configured
      for (const slot of SLOTS) if (store.runs[slot]) setValues(slot, store.runs[slot].config);
    }
  });
  listed();
  for (const slot of SLOTS) setValues(slot, schema.defaults[slot]);
}
