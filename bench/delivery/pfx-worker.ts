/** A worker thread of pfx.ts buildHistory: builds its range of slots and posts the entries back. */
import { parentPort, workerData } from 'node:worker_threads';
import { type HistoryInput, buildHistoryRange } from './pfx.ts';

const { input, from, to } = workerData as { input: HistoryInput; from: number; to: number };
parentPort!.postMessage(await buildHistoryRange(input, from, to));
