// REST calls. Every failure becomes an ApiError whose message is the server's sentence and
// whose field (on a 400) names what it concerns, e.g. "models[1].lr".

export class ApiError extends Error {
  constructor(message, status, field = null) {
    super(message);
    this.status = status;
    this.field = field;
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
    throw new ApiError(data?.error ?? `${method} ${path} answered ${answer.status}.`, answer.status, data?.field ?? null);
  }
  return data;
}

export const startRuns = (mode, models) => call("POST", "/api/runs", { mode, models });
export const listRuns = () => call("GET", "/api/runs");
export const getRun = (id) => call("GET", `/api/runs/${encodeURIComponent(id)}`);
export const stopRun = (id) => call("POST", `/api/runs/${encodeURIComponent(id)}/stop`);
export const predict = (image, runIds) => call("POST", "/api/predict", { image, runs: runIds });
export const samples = (dataset, count) =>
  call("GET", `/api/samples?dataset=${encodeURIComponent(dataset)}&count=${count}`);
