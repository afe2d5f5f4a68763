// The run config as the page types it: fields, presets, validation and parameter count.
// Mirrors cnn/config.py and cnn/models.py so a bad value is caught before anything is sent;
// the server still validates everything. No DOM here.

export const FIELDS = [
  "channels", "kernel_size", "optimizer", "lr", "batch_size",
  "epochs", "dataset", "seed", "train_samples", "precision",
];

export const CHOICES = {
  kernel_size: ["3", "5", "7"],
  optimizer: ["adam", "sgd", "rmsprop"],
  dataset: ["mnist", "fashion_mnist"],
  precision: ["auto", "fp32", "bf16"],
};

const BASE = {
  channels: "16-32-64", kernel_size: "3", optimizer: "adam", lr: "0.001", batch_size: "64",
  epochs: "3", dataset: "mnist", seed: "0", train_samples: "", precision: "auto",
};
export const DEFAULTS = { a: { ...BASE }, b: { ...BASE, channels: "8-8-8" } };

// Presets change the architecture only; training settings stay as typed.
export const PRESETS = {
  classic: { label: "classic 16-32-64", values: { channels: "16-32-64", kernel_size: "3" } },
  small: { label: "small 8-8-8", values: { channels: "8-8-8", kernel_size: "3" } },
  tiny: { label: "tiny 4-8", values: { channels: "4-8", kernel_size: "3" } },
  wide: { label: "wide 64-128-256, 5x5", values: { channels: "64-128-256", kernel_size: "5" } },
};

const TRAIN_SIZE = { mnist: 60000, fashion_mnist: 60000 };
const MAX_LAYERS = 6, MAX_CHANNELS = 256;

function wholeNumber(name, text, low, high) {
  const s = String(text).trim();
  const n = Number(s);
  if (s === "" || !Number.isFinite(n) || !Number.isInteger(n) || n < low || n > high) {
    throw new FieldError(name, `must be a whole number from ${low} to ${high}`);
  }
  return n;
}

function choice(name, text, allowed) {
  const s = String(text).trim().toLowerCase();
  if (!allowed.includes(s)) throw new FieldError(name, `must be one of ${allowed.join(", ")}`);
  return s;
}

export class FieldError extends Error {
  constructor(field, rule) {
    super(`${field}: ${rule}`);
    this.field = field;
    this.rule = rule; // what is allowed, without the field's name: the form shows it under its label
  }
}

export function parseChannels(text) {
  const rule = `must be 1 to ${MAX_LAYERS} layers of 1 to ${MAX_CHANNELS} channels, like 16-32-64`;
  const parts = String(text).trim().split(/[\s,-]+/).filter(Boolean);
  if (parts.length < 1 || parts.length > MAX_LAYERS) throw new FieldError("channels", rule);
  try {
    return parts.map((p) => wholeNumber("channels", p, 1, MAX_CHANNELS));
  } catch {
    throw new FieldError("channels", rule);
  }
}

const PARSERS = {
  channels: (v) => parseChannels(v),
  kernel_size: (v) => Number(choice("kernel_size", v, CHOICES.kernel_size)),
  optimizer: (v) => choice("optimizer", v, CHOICES.optimizer),
  lr: (v) => {
    const s = String(v).trim();
    const n = Number(s);
    if (s === "" || !(n >= 1e-5 && n <= 1)) throw new FieldError("lr", "must be a number from 1e-05 to 1");
    return n;
  },
  batch_size: (v) => wholeNumber("batch_size", v, 1, 4096),
  epochs: (v) => wholeNumber("epochs", v, 1, 50),
  dataset: (v) => choice("dataset", v, CHOICES.dataset),
  seed: (v) => (String(v).trim() === "" ? 0 : wholeNumber("seed", v, 0, 2 ** 31 - 1)),
  train_samples: () => null, // depends on the dataset; handled in validate()
  precision: (v) => choice("precision", v, CHOICES.precision),
};

/** Typed values {field: string} -> {config, errors: {field: rule}}; config is null if any error. */
export function validate(values) {
  const config = {}, errors = {};
  for (const name of FIELDS) {
    try {
      config[name] = PARSERS[name](values[name] ?? "");
    } catch (err) {
      errors[name] = err.rule;
    }
  }
  const samples = String(values.train_samples ?? "").trim();
  if (samples !== "") {
    try {
      config.train_samples = wholeNumber("train_samples", samples, 1, TRAIN_SIZE[config.dataset] ?? 60000);
    } catch (err) {
      errors.train_samples = err.rule;
    }
  }
  return { config: Object.keys(errors).length ? null : config, errors };
}

/** Weights + biases of the CNN a valid config describes (the README's formula). */
export function paramCount(config) {
  const k = config.kernel_size;
  let total = 0, inCh = 1;
  for (const out of config.channels) {
    total += out * (inCh * k * k + 1);
    inCh = out;
  }
  const side = 28 >> Math.min(config.channels.length, 2);
  return total + 10 * (inCh * side * side + 1);
}

/** A server config (channels as a list) -> the strings the form shows. */
export function toFormValues(config) {
  const out = {};
  for (const name of FIELDS) {
    const v = config[name];
    out[name] = name === "channels" ? v.join("-") : v === null || v === undefined ? "" : String(v);
  }
  return out;
}
