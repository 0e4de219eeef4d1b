// Test support for the Node test suites (tests/openai, tests/dashboard): `tandem` processes
// started and stopped by the tests, and the line `tandem run --http` prints when it serves.
import { spawn } from 'node:child_process';

export const tandem = process.env.TANDEM_BIN;

// `tandem run --http` once its cluster serves: the API's base URL and the coordinator.
export const SERVING =
  /serving the OpenAI API on (http:\/\/127\.0\.0\.1:\d+\/v1) \(coordinator (127\.0\.0\.1:\d+)\)/;

// Starts `tandem args...` and waits for `pattern` in its output.
export function startProcess(args, pattern, timeoutMs = 120000) {
  const child = spawn(tandem, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}:\n${log}`)),
      timeoutMs);
    const onData = (d) => {
      log += d;
      const m = log.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, exited, log: () => log });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`tandem ${args.join(' ')} exited (${code ?? signal}):\n${log}`));
    });
  });
}

export async function stopProcess(p) {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  await p.exited;
}
