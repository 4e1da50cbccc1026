// The API: Hono on Node.js. POST /v1/messages enqueues a BullMQ job; every request is
// timed in http_request_duration_seconds, the histogram retention-stack scales the API on
// (spec.api.autoscaling.latency). Prometheus attaches namespace and pod when it scrapes
// the pod, so the metric needs no label naming the stack.
import { serve } from '@hono/node-server';
import { Queue } from 'bullmq';
import { Hono } from 'hono';
import client from 'prom-client';
import { connection, queueOptions, settings } from './config.js';

const s = settings();
const conn = connection(s);
const queue = new Queue(s.queueName, queueOptions(s, conn));
const registry = new client.Registry();
const duration = new client.Histogram({
  name: 'http_request_duration_seconds',
  help: 'Time from the first byte of a request to the end of its response.',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5],
  registers: [registry],
});
const UNTIMED = new Set(['/healthz', '/readyz', '/metrics']);

const app = new Hono();
app.use('*', async (c, next) => {
  if (UNTIMED.has(c.req.path)) return next();
  const end = duration.startTimer();
  await next();
  end({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
});
app.get('/healthz', (c) => c.text('ok'));
// Ready only while connected: BullMQ's connection queues commands while it reconnects,
// so a PING would wait instead of failing.
app.get('/readyz', (c) =>
  conn.status === 'ready' ? c.text('ready') : c.text('redis unreachable', 503),
);
app.get('/metrics', async (c) =>
  c.body(await registry.metrics(), 200, { 'Content-Type': registry.contentType }),
);
app.post('/v1/messages', async (c) => {
  const body = await c.req.json().catch(() => null);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return c.json({ error: 'the body must be a JSON object' }, 400);
  }
  const job = await queue.add('message', body, { removeOnComplete: 1000, removeOnFail: 5000 });
  return c.json({ id: job.id }, 202);
});
// A route for load tests: answers after ?ms= milliseconds (at most 10 s).
app.get('/v1/simulate', async (c) => {
  const ms = Math.min(Math.max(Number(c.req.query('ms') ?? 0), 0), 10_000);
  await new Promise((resolve) => setTimeout(resolve, ms));
  return c.json({ slept: ms });
});

const server = serve({ fetch: app.fetch, port: s.httpPort, hostname: s.bindAddress }, (info) =>
  console.log(JSON.stringify({ msg: 'listening', port: info.port, queue: s.queueName })),
);

// SIGTERM (a pod scaled in): stop accepting, finish open requests, close the queue.
process.on('SIGTERM', () => {
  server.close(async () => {
    await queue.close();
    await conn.quit();
    process.exit(0);
  });
});
