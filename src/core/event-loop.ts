/**
 * One turn of the event loop without a timer's minimum delay (setTimeout(0) waits >= 1 ms
 * in Node and >= 4 ms in nested browser timers, longer than a small flow's training step):
 * setImmediate in Node, a MessageChannel message in browsers.
 */
export function yieldToEventLoop(): Promise<void> {
  if (typeof setImmediate === "function") return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
