// The dashboard open in headless Chromium until killed: the watcher that
// bench/dashboard_overhead.sh (WATCHER=browser) measures. Prints "polling" once the page
// shows the cluster. Uses tests/dashboard's playwright-core and Debian's chromium.
// Usage: node bench/dashboard_watcher.mjs http://127.0.0.1:PORT/
import { chromium } from '../tests/dashboard/node_modules/playwright-core/index.mjs';

const url = process.argv[2];
const browser = await chromium.launch({ executablePath: process.env.TANDEM_CHROMIUM ||
  '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const page = await browser.newPage();
await page.goto(url);
await page.waitForFunction(() => document.querySelectorAll('#pipeline .stage').length > 0);
console.log('polling');
const stop = async () => { await browser.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
