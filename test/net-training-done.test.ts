// When the server has trained its last round (maxRounds) it tells the nodes with a goodbye whose
// code is 'training_done'; a node then checkpoints, stops and does not reconnect. A node that
// connects after the end is told the same at once. Without the code (a plain shutdown goodbye)
// the node keeps reconnecting: the test shows both.
import t from 'tap';
import { LinearGenerator } from './helpers/net-backends.js';
import { makeTestNode, startTestServer, waitFor } from './helpers/net-harness.js';

t.test('goodbye training_done: the node stops for good', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { maxRounds: 3 });
  t.teardown(() => server.stop());
  let done: string | undefined;
  const a = makeTestNode(server.url, 'alpha', { onTrainingDone: (why) => (done = why) });
  a.node.start();
  await waitFor(() => done !== undefined, 20_000, 'alpha told training is done');
  t.match(done, /training done: 3 rounds/);
  t.equal(a.node.state, 'stopped', 'stopped, not reconnecting');
  const connects = a.node.stats.connects;
  await new Promise((r) => setTimeout(r, 600)); // several reconnect delays (50-400 ms)
  t.equal(a.node.stats.connects, connects, 'no reconnect attempt afterwards');
  t.equal(server.round, 3);

  let lateDone: string | undefined;
  const b = makeTestNode(server.url, 'beta', { onTrainingDone: (why) => (lateDone = why) });
  b.node.start();
  await waitFor(() => lateDone !== undefined, 10_000, 'a late node told at once');
  t.equal(b.node.state, 'stopped');
});

t.test('control: a plain shutdown goodbye (no code) makes the node reconnect', async (t) => {
  const server = await startTestServer(new LinearGenerator());
  let done = false;
  const a = makeTestNode(server.url, 'alpha', { onTrainingDone: () => (done = true) });
  a.node.start();
  await waitFor(() => server.round >= 2, 20_000, 'two rounds');
  await server.stop();
  await new Promise((r) => setTimeout(r, 300));
  t.equal(done, false, 'not told training is done');
  t.not(a.node.state, 'stopped', `still trying to reconnect (state ${a.node.state})`);
  await a.node.stop();
});

t.test('an unreachable server: the node retries, logging why, then gives up after giveUpAfterMs', async (t) => {
  // A port nothing listens on: every attempt is refused.
  const server = await startTestServer(new LinearGenerator());
  const url = server.url;
  await server.stop();
  const warnings: string[] = [];
  let failed: string | undefined;
  const log = (level: string, msg: string, f?: Record<string, unknown>) => {
    if (level === 'warn') warnings.push(`${msg} ${JSON.stringify(f)}`);
  };
  const started = Date.now();
  const a = makeTestNode(url, 'alpha', { giveUpAfterMs: 700, log, onFailed: (why) => (failed = why) });
  a.node.start().catch(() => {});
  await waitFor(() => failed !== undefined, 10_000, 'the node gives up');
  t.ok(Date.now() - started >= 700, 'not before giveUpAfterMs');
  t.match(failed, /cannot reach the server at ws:\/\/127\.0\.0\.1:\d+\/ws for \d+ s \(last cause: .*ECONNREFUSED.*\); giving up/);
  t.ok(warnings.length >= 2 && warnings.every((w) => /cannot connect to the server .*ECONNREFUSED/.test(w)), `each retry logged its cause at warn (${warnings.length})`);
  t.equal(a.node.state, 'failed');
});
