// REST calls. Every failure becomes an ApiError whose message is the server's sentence and
// whose field (on a 400) names what it concerns, e.g. "models[1].lr"; errors (on a 400 that has
// them) maps every bad field to its rule.

export class ApiError extends Error {
  constructor(message, status, field = null, errors = null) {
    super(message);
    this.status = status;
    this.field = field;
    this.errors = errors;
  }
}

export async function call(method, path, body) {
  let answer;
  try {
    answer = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("The server cannot be reached; is it still running?", 0);
  }
  let data = null;
  try {
    data = await answer.json();
  } catch {
    // not JSON: a proxy page or an empty body
  }
  if (!answer.ok) {
    const message = data?.error ?? `${method} ${path} answered ${answer.status}.`;
    throw new ApiError(message, answer.status, data?.field ?? null, data?.errors ?? null);
  }
  return data;
}

export const startRuns = (mode, models) => call("POST", "/api/runs", { mode, models });
export const listRuns = () => call("GET", "/api/runs");
export const getRun = (id) => call("GET", `/api/runs/${encodeURIComponent(id)}`);
export const stopRun = (id) => call("POST", `/api/runs/${encodeURIComponent(id)}/stop`);
export const predict = (image, runIds) => call("POST", "/api/predict", { image, runs: runIds });
export const samples = (dataset, count, split = "test", imageSize = null) =>
  call("GET", `/api/samples?dataset=${encodeURIComponent(dataset)}&count=${count}&split=${split}${imageSize ? `&image_size=${imageSize}` : ""}`);

// the analysis page's reads of one ended run, or of a pair
export const getAnalysis = (id) => call("GET", `/api/runs/${encodeURIComponent(id)}/analysis`);
export const getCell = (id, t, p) => call("GET", `/api/runs/${encodeURIComponent(id)}/confusion?true=${t}&pred=${p}`);
export const compareRuns = (a, b) => call("GET", `/api/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
export const getGradients = (id) => call("GET", `/api/runs/${encodeURIComponent(id)}/gradients`);
export const activations = (id, image) => call("POST", `/api/runs/${encodeURIComponent(id)}/activations`, { image });

// the main page: the form's schema, a config as typed, the test-image grid in one request per model
export const getSchema = () => call("GET", "/api/schema");
export const checkModel = (config, slot) => call("POST", "/api/models/check", { config, slot });
export const predictImages = (images, runIds) => call("POST", "/api/predict", { images, runs: runIds });

// the main page's inference on an image file (base64 of its bytes, or a data: URL) and its dataset view
export const predictFile = (file, runIds) => call("POST", "/api/predict", { file, runs: runIds });
export const listDatasets = () => call("GET", "/api/datasets");
export const augmentPreview = (dataset, augment, count, seed = 0, imageSize = null) =>
  call("POST", "/api/augment/preview", { dataset, image_size: imageSize, augment, count, seed });
