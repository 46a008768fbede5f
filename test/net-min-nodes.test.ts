// --min-nodes: rounds start only when that many nodes are ready; with the default (1) the first
// node alone starts training (the control that shows the test can tell the two apart).
import t from 'tap';
import { LinearGenerator } from './helpers/net-backends.js';
import { makeTestNode, startTestServer, waitFor } from './helpers/net-harness.js';

t.test('minNodes 2: one node waits, the second starts the rounds', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { minNodes: 2 });
  const a = makeTestNode(server.url, 'alpha');
  const b = makeTestNode(server.url, 'beta');
  t.teardown(async () => {
    await Promise.all([a.node.stop(), b.node.stop()]);
    await server.stop();
  });
  a.node.start();
  await a.node.waitUntilReady(10_000);
  await waitFor(() => server.metrics().nodes.some((n) => n.id === 'alpha' && n.masks > 0), 10_000, 'alpha masks held');
  await new Promise((r) => setTimeout(r, 800));
  t.equal(server.round, 0, 'no round with one node of two');
  b.node.start();
  await waitFor(() => server.round >= 3, 20_000, 'rounds once two are ready');
  t.ok(server.metrics().lastRound!.asked.length === 2, 'both nodes asked');
});

t.test('control: the default starts with the first node alone', async (t) => {
  const server = await startTestServer(new LinearGenerator());
  const a = makeTestNode(server.url, 'alpha');
  t.teardown(async () => {
    await a.node.stop();
    await server.stop();
  });
  a.node.start();
  await waitFor(() => server.round >= 3, 20_000, 'rounds with one node');
  t.pass('one node trains alone by default');
});
