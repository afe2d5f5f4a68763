// The live stream: Socket.IO from our own server. handlers: {eventName: fn(payload)} plus
// optional onStatus(text) for the connection state.
import { io } from "/vendor/socket.io.esm.min.js";

export const EVENTS = [
  "history", "runs_created", "run_started", "batch", "gradients", "epoch", "run_finished", "run_stopped", "run_failed",
  "analysis_ready", "analysis_failed", "request_failed",
];

export function connect(handlers, onStatus = () => {}) {
  const socket = io({ reconnectionDelayMax: 5000 });
  for (const name of EVENTS) {
    if (handlers[name]) socket.on(name, (payload) => handlers[name](payload));
  }
  socket.on("connect", () => onStatus("connected"));
  socket.on("disconnect", () => onStatus("disconnected; reconnecting…"));
  socket.io.on("reconnect_attempt", () => onStatus("reconnecting…"));
  return socket;
}
