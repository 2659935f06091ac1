// Connects to a bctrl-server CDP endpoint with Puppeteer and reports what it saw as JSON.
// Usage: node flow.mjs <browserWSEndpoint> <pageUrl>
import puppeteer from "puppeteer-core";

const [endpoint, pageUrl] = process.argv.slice(2);
const browser = await puppeteer.connect({ browserWSEndpoint: endpoint, defaultViewport: null });
try {
  const page = await browser.newPage();
  await page.goto(pageUrl, { waitUntil: "load" });
  await page.click("#go");
  const status = await page.$eval("#status", (el) => el.textContent);
  const title = await page.title();
  const version = await browser.version();
  await page.close();
  console.log(JSON.stringify({ title, status, version }));
} finally {
  await browser.disconnect();
}
