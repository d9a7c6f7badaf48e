/**
 * A device's push channel, lean: the signed GET /device/v1/events on a
 * socket of its own (node:http, no pooling), read as server-sent events.
 * The agent's DeviceApiClient.events does the same over fetch; ten
 * thousand of those streams in one process cost far more memory and CPU
 * than the simulated devices' real work, which is what this bench means
 * to load the server with.
 */
import type { KeyObject } from 'node:crypto';
import { type ClientRequest, request } from 'node:http';
import { DEVICE_API, type DeviceEvent } from '../../src/protocol/device-api.ts';
import { DEVICE_AUTH_HEADER, signRequest } from '../../src/protocol/request-signing.ts';

export interface EventStream {
  close(): void;
}

export interface StreamHandlers {
  readonly onOpen: () => void;
  readonly onEvent: (event: DeviceEvent) => void;
  /** The stream failed or ended; the caller decides whether to reconnect. */
  readonly onEnd: (why: string) => void;
}

export function openEventStream(base: URL, deviceId: string, key: KeyObject, handlers: StreamHandlers): EventStream {
  const path = `${DEVICE_API}/events`;
  let ended = false;
  const end = (why: string) => {
    if (ended) return;
    ended = true;
    handlers.onEnd(why);
  };
  const req: ClientRequest = request(
    {
      host: base.hostname,
      port: base.port,
      path,
      method: 'GET',
      agent: false,
      headers: { accept: 'text/event-stream', [DEVICE_AUTH_HEADER]: signRequest(deviceId, key, 'GET', path) },
    },
    (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        end(`HTTP ${res.statusCode ?? 0}`);
        return;
      }
      handlers.onOpen();
      res.setEncoding('utf8');
      let buffer = '';
      let data: string[] = [];
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          if (line === '') {
            if (data.length > 0) {
              try {
                handlers.onEvent(JSON.parse(data.join('\n')) as DeviceEvent);
              } catch {
                // not an event of ours: ignored, as EventSource would
              }
            }
            data = [];
          } else if (line.startsWith('data:')) {
            data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
          }
        }
      });
      res.on('end', () => end('the server ended the stream'));
      res.on('error', (e) => end(e.message));
    },
  );
  req.on('error', (e) => end(e.message));
  req.end();
  return {
    close() {
      ended = true;
      req.destroy();
    },
  };
}
