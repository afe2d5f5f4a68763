// The live stream: Socket.IO from our own server. Listens to the event names the server's schema
// declares and hands each to store.apply; onStatus(text) hears the connection's state.
import { io } from "/vendor/socket.io.esm.min.js";
import { HANDLED, IGNORED } from "./store.js";

/** names: the schema's events.to_client names. */
export function connect(names, store, onStatus = () => {}) {
  const socket = io({ reconnectionDelayMax: 5000 });
  for (const name of names) {
    if (IGNORED.includes(name)) continue;
    // the server declares an event the page neither handles nor lists as ignored: a gap to close
    if (!HANDLED.includes(name)) console.error(`The page has no handler for the server's event "${name}".`);
    else socket.on(name, (payload) => store.apply(name, payload));
  }
  socket.onAny((name) => {
    if (!names.includes(name)) console.error(`The server sent "${name}", an event its schema does not declare.`);
  });
  socket.on("connect", () => onStatus("connected"));
  socket.on("disconnect", () => onStatus("disconnected; reconnecting…"));
  socket.io.on("reconnect_attempt", () => onStatus("reconnecting…"));
  return socket;
}
