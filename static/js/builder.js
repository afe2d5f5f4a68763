// The layer builder of one panel: a `layers` config as rows to add, remove, reorder and edit, each
// showing its output shape, parameters and MACs as the server's check computed them; and the diagram of
// blocks drawn from the same rows, for any architecture. Layer types and their fields come from the
// schema's $defs: no bound, default or choice is written here.
import { el } from "./dom.js";
import { count, int } from "./format.js";

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A property with its $ref into the schema's $defs filled in (the property's own keys win). */
export function resolve(config, prop) {
  if (!prop?.$ref) return prop;
  const { $ref, ...own } = prop;
  return { ...config.$defs?.[$ref.split("/").pop()], ...own };
}

/** Map of layer type -> [[field, property], ...] besides `type`, in the schema's order (its oneOf, then
 * any type only its discriminator names). */
export function layerTypes(config) {
  const prop = config.properties.layers;
  const items = (prop.anyOf?.find((t) => t.type === "array") ?? prop).items ?? {};
  const types = new Map();
  const add = (type, def) => {
    if (def && !types.has(type)) types.set(type, Object.entries(def.properties ?? {}).filter(([n]) => n !== "type"));
  };
  for (const option of items.oneOf ?? items.anyOf ?? []) {
    const def = resolve(config, option);
    const tag = def?.properties?.type ?? {};
    for (const type of tag.const !== undefined ? [tag.const] : (tag.enum ?? [])) add(type, def);
  }
  for (const [type, ref] of Object.entries(items.discriminator?.mapping ?? {})) add(type, resolve(config, { $ref: ref }));
  return types;
}

const kindsOf = (prop) => (prop.anyOf ?? [prop]).map((t) => t.type);

/** What a layer's box holds, as JSON: "" is left out (the server's default), digits are a number where
 * the field takes one; anything else goes as typed, for the server to accept or name. */
export function typed(text, prop) {
  const t = text.trim();
  if (t === "") return undefined;
  const kinds = kindsOf(prop);
  if (kinds.includes("integer") && /^\d+$/.test(t)) return Number(t);
  if (kinds.includes("number") && DECIMAL.test(t)) return Number(t);
  return text;
}

const shown = (value) => (value === null || value === undefined ? "" : String(value));
export const shapeText = (shape) => (shape ?? []).join("×");
const sizeText = (params, macs) => `${int(params)} params · ${count(macs)} MACs`;

/** The control of one layer field: a select for a fixed list of choices, else a typed box (with its word
 * choices, like same and valid, as suggestions). Returns {control, extra, read(), write(value)}. */
function fieldControl(id, prop) {
  const choices = prop.enum ?? [];
  if (choices.length) {
    const control = el("select", { id }, ...choices.map((c, i) => new Option(String(c), String(i))));
    return {
      control,
      extra: [],
      read: () => choices[Number(control.value)],
      write: (value) => {
        const i = choices.findIndex((c) => c === value);
        control.value = String(Math.max(i, 0));
      },
    };
  }
  const control = el("input", { id, type: "text", autocomplete: "off", spellcheck: false });
  const words = (prop.anyOf ?? [prop]).flatMap((t) => (t.type === "string" ? (t.enum ?? []) : []));
  const kinds = kindsOf(prop);
  if (!words.length && kinds.includes("integer")) control.inputMode = "numeric";
  else if (!words.length && kinds.includes("number")) control.inputMode = "decimal";
  if (prop.default === null) control.placeholder = "default";
  const range = (prop.anyOf ?? [prop]).find((t) => t.minimum !== undefined);
  const top = range?.maximum ?? range?.exclusiveMaximum;
  const allowed = [...words, range && top !== undefined ? `${range.minimum} to ${range.maximum ?? `below ${top}`}` : ""];
  control.title = [prop.description, allowed.filter(Boolean).join(", ")].filter(Boolean).join(" · ");
  const extra = [];
  if (words.length) {
    const list = el("datalist", { id: `${id}-choices` }, ...words.map((w) => new Option(w, w)));
    control.setAttribute("list", list.id);
    extra.push(list);
  }
  return { control, extra, read: () => typed(control.value, prop), write: (value) => (control.value = shown(value)) };
}

let made = 0; // row ids, unique on the page: labels point at inputs by id

/** One user layer's row: its fields, its tools and where its check result goes. */
function layerRow(slot, type, fields, values, actions) {
  const uid = `${slot}-layer-${++made}`;
  const row = { uid, type, fields: {} };
  const inputs = [];
  for (const [name, prop] of fields) {
    const id = `${uid}-${name}`;
    const field = fieldControl(id, prop);
    field.write(Object.hasOwn(values, name) ? values[name] : prop.default);
    field.control.addEventListener(field.control.tagName === "SELECT" ? "change" : "input", actions.edited);
    row.fields[name] = field;
    const label = el("label", { htmlFor: id, text: name });
    inputs.push(el("span", { class: "layer-field" }, label, field.control, ...field.extra));
  }
  row.number = el("span", { class: "layer-n" });
  row.shape = el("span", { class: "layer-shape" });
  row.size = el("span", { class: "layer-size" });
  const tool = (text, label, fn) => {
    const button = el("button", { type: "button", class: "icon", text, "aria-label": label });
    button.addEventListener("click", () => fn(row));
    return button;
  };
  row.up = tool("↑", "move up", actions.up);
  row.down = tool("↓", "move down", actions.down);
  row.remove = tool("✕", "remove", actions.remove);
  row.message = el("p", { class: "message layer-message", id: `${uid}-message`, "aria-live": "polite" });
  for (const field of Object.values(row.fields)) field.control.setAttribute("aria-describedby", row.message.id);
  const head = el(
    "div",
    { class: "layer-head" },
    row.number,
    el("span", { class: "layer-type", text: type }),
    el("span", { class: "layer-stats" }, row.shape, row.size),
    el("span", { class: "layer-tools" }, row.up, row.down, row.remove),
  );
  row.node = el("li", { class: "layer", role: "group", "data-type": type }, head);
  if (inputs.length) row.node.append(el("div", { class: "layer-fields" }, ...inputs));
  row.node.append(row.message);
  row.value = () => {
    const layer = { type };
    for (const [name, field] of Object.entries(row.fields)) {
      const value = field.read();
      if (value !== undefined) layer[name] = value;
    }
    return layer;
  };
  return row;
}

/** A row the rule adds (an implied flatten, the final linear layer to the class count): shown, not edited. */
function addedRow(info) {
  return el(
    "li",
    { class: "layer added", "data-type": info.type, "aria-label": `added for you: ${info.name}` },
    el(
      "div",
      { class: "layer-head" },
      el("span", { class: "layer-n", text: "+" }),
      el("span", { class: "layer-type", text: info.name === info.type ? info.type : `${info.name} · ${info.type}` }),
      el(
        "span",
        { class: "layer-stats" },
        el("span", { class: "layer-shape", text: shapeText(info.output_shape) }),
        el("span", { class: "layer-size", text: sizeText(info.params, info.macs) }),
      ),
      el("span", { class: "badge", text: "added for you" }),
    ),
  );
}

export class LayerBuilder {
  /** root: the panel's builder box; types: layerTypes(schema.config); onChange(): the stack was edited. */
  constructor(root, slot, types, onChange) {
    this.slot = slot;
    this.types = types;
    this.onChange = onChange;
    this.rows = [];
    this.added = [];
    this.list = el("ol", { class: "layers", "aria-label": `Layers of model ${slot.toUpperCase()}` });
    const id = `${slot}-new-layer`;
    this.choice = el("select", { id }, ...[...types.keys()].map((t) => new Option(t, t)));
    this.addButton = el("button", { type: "button", class: "secondary", text: "Add layer" });
    this.addButton.addEventListener("click", () => this.add(this.choice.value));
    this.message = el("p", { class: "message builder-message", id: `${slot}-layers-message`, "aria-live": "polite" });
    const tools = el(
      "div",
      { class: "builder-tools" },
      el("label", { htmlFor: id, text: "new layer" }),
      this.choice,
      this.addButton,
    );
    this.empty = el("p", { class: "hint builder-empty", text: "No layers yet: pick a type and add it." });
    root.append(this.empty, this.list, tools, this.message);
    this.actions = {
      edited: () => this.onChange(),
      up: (row) => this.move(row, -1),
      down: (row) => this.move(row, 1),
      remove: (row) => this.drop(row),
    };
  }

  /** The stack as the server takes it: [{type, field: value}, ...]. */
  value() {
    return this.rows.map((row) => row.value());
  }

  /** Shows a stack (a preset's, a run's); no onChange: the caller checks. */
  set(layers) {
    this.rows = (layers ?? []).map((layer) => this.row(layer.type, layer));
    this.place();
  }

  row(type, values = {}) {
    return layerRow(this.slot, type, this.types.get(type) ?? [], values, this.actions);
  }

  add(type) {
    const row = this.row(type);
    this.rows.push(row);
    this.place();
    // a field with no default (a conv's out) is what to type next
    const first = Object.values(row.fields).find((f) => f.control.value === "") ?? Object.values(row.fields)[0];
    (first?.control ?? row.remove).focus();
    this.onChange();
  }

  move(row, by) {
    const i = this.rows.indexOf(row), j = i + by;
    if (j < 0 || j >= this.rows.length) return;
    [this.rows[i], this.rows[j]] = [this.rows[j], this.rows[i]];
    this.place();
    const same = by < 0 ? row.up : row.down; // moving a row blurs it: the button pressed keeps the focus
    (same.disabled ? (by < 0 ? row.down : row.up) : same).focus();
    this.onChange();
  }

  drop(row) {
    const i = this.rows.indexOf(row);
    this.rows.splice(i, 1);
    row.node.remove();
    this.place();
    (this.rows[i]?.remove ?? this.rows[i - 1]?.remove ?? this.choice).focus();
    this.onChange();
  }

  /** Puts the rows (and the added ones) in order with as few moves as possible: a moved input loses focus. */
  place(added = this.added) {
    this.rows.forEach((row, i) => {
      row.number.textContent = String(i + 1);
      row.node.setAttribute("aria-label", `layer ${i + 1}: ${row.type}`);
      row.node.dataset.field = `layers[${i}]`;
      row.up.disabled = i === 0;
      row.down.disabled = i === this.rows.length - 1;
      row.up.setAttribute("aria-label", `move layer ${i + 1} up`);
      row.down.setAttribute("aria-label", `move layer ${i + 1} down`);
      row.remove.setAttribute("aria-label", `remove layer ${i + 1}`);
    });
    // added rows sit after the user layer they follow (after: -1 = first)
    const order = [];
    for (const a of added.filter((a) => a.after < 0)) order.push(a.node);
    this.rows.forEach((row, i) => {
      order.push(row.node);
      for (const a of added.filter((a) => a.after === i)) order.push(a.node);
    });
    for (const node of [...this.list.children]) if (!order.includes(node)) node.remove();
    order.forEach((node, i) => {
      if (this.list.children[i] !== node) this.list.insertBefore(node, this.list.children[i] ?? null);
    });
    this.empty.hidden = this.rows.length > 0;
  }

  /** The panel's check: each row's shape, params and MACs (rows matched by index), the rows the rule
   * added, and each refused layer's sentence on its row. */
  render(check) {
    const errors = check.state === "invalid" ? (check.errors ?? {}) : {};
    const answered = check.state === "valid" && this.matches(check.config?.layers);
    this.list.setAttribute("aria-busy", String(Boolean(check.pending)));
    this.rows.forEach((row, i) => {
      const mine = answered ? check.layers.filter((r) => r.index === i) : [];
      const last = mine.at(-1);
      row.shape.textContent = last ? shapeText(last.output_shape) : "";
      row.size.textContent = last ? sizeText(sum(mine, "params"), sum(mine, "macs")) : "";
      const rule = errors[`layers[${i}]`] ?? "";
      if (row.message.textContent !== rule) row.message.textContent = rule;
      row.node.dataset.invalid = String(Boolean(rule));
      for (const field of Object.values(row.fields)) field.control.setAttribute("aria-invalid", String(Boolean(rule)));
    });
    this.message.textContent = errors.layers ?? "";
    let after = -1;
    const added = [];
    for (const info of answered ? check.layers : []) {
      if (info.index === null || info.index === undefined) added.push({ after, node: addedRow(info) });
      else after = info.index;
    }
    this.added = added;
    this.place();
  }

  /** Whether an answer's normalised layers are the stack shown now, type for type. */
  matches(layers) {
    if (!Array.isArray(layers) || layers.length !== this.rows.length) return false;
    return layers.every((l, i) => l.type === this.rows[i].type);
  }
}

const sum = (rows, key) => rows.reduce((n, r) => n + (r[key] ?? 0), 0);

/** The architecture as blocks, input first, from a valid check's rows: each block's size follows its
 * map (height: its side against the input's; width: its channels), its shape written under it. */
export function drawDiagram(root, check) {
  root.setAttribute("aria-busy", String(Boolean(check.pending)));
  if (check.pending && root.children.length) return; // the last drawing stays, dimmed, until the answer
  if (check.state !== "valid" || !check.layers) {
    const why = check.state === "invalid" ? "no diagram while a value is refused" : "";
    root.replaceChildren(...(why ? [el("li", { class: "hint diagram-none", text: why })] : []));
    return;
  }
  const input = { name: "input", type: "input", output_shape: check.inputShape ?? [], params: 0, macs: 0 };
  const rows = [input, ...check.layers];
  const side = Math.max(...rows.map((r) => (r.output_shape.length === 3 ? r.output_shape[1] : 1)), 1);
  const widest = Math.max(...rows.map((r) => r.output_shape[0] ?? 1), 2);
  root.replaceChildren(
    ...rows.map((r) => {
      const [c = 1, h] = r.output_shape;
      const map = r.output_shape.length === 3;
      const box = el("span", { class: "block-box" });
      box.style.height = `${map ? Math.max(0.4, (2.6 * h) / side) : 2.6}rem`;
      box.style.width = `${map ? 0.35 + (1.4 * Math.log2(c + 1)) / Math.log2(widest + 1) : 0.3}rem`;
      const added = r.type !== "input" && (r.index === null || r.index === undefined) && check.config?.layers;
      const size = r.params ? `, ${sizeText(r.params, r.macs)}` : "";
      const title = `${r.name} (${r.type}): ${shapeText(r.output_shape)}${size}`;
      return el(
        "li",
        { class: `block${added ? " added" : ""}`, "data-type": r.type, title },
        box,
        el("span", { class: "block-name", text: r.name }),
        el("span", { class: "block-shape", text: shapeText(r.output_shape) }),
      );
    }),
  );
}
