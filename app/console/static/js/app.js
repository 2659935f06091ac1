// The console's shell: sign-in, the navigation and a hash router. Each page is a module under pages/
// exporting `default async function render(root, params)`, which may return a cleanup function (called
// when the user leaves the page: close streams, stop timers).
import * as api from "./api.js";
import { notice, problem } from "./util.js";

const ROUTES = [
  [/^#\/browsers\/([^/]+)\/live$/, "live", (m) => ({ browserId: decodeURIComponent(m[1]) })],
  [/^#\/browsers\/?$/, "browsers", () => ({})],
  [/^#\/runs\/([^/?]+)$/, "run", (m) => ({ runId: decodeURIComponent(m[1]) })],
  [/^#\/runs\/?(\?.*)?$/, "runs", (m) => Object.fromEntries(new URLSearchParams((m[1] || "").slice(1)))],
  [/^#\/operations\/?$/, "operations", () => ({})],
];
const SECTION = { live: "browsers", browsers: "browsers", run: "runs", runs: "runs", operations: "operations" };

const $ = (id) => document.getElementById(id);
let cleanup = null;
let generation = 0;

function showSignIn(reason) {
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("page").hidden = true;
  $("sign-in").hidden = false;
  const error = $("sign-in-error");
  error.hidden = !reason;
  error.textContent = reason || "";
  $("key").focus();
}

// Asks the server who the key is: a wrong, revoked or expired key is refused here with the server's words.
async function whoami() {
  const me = await api.get("/v1/auth/whoami");
  $("who").textContent = me.email || "";
  api.get("/v1/account").then((account) => { if (account?.name) $("who").textContent = account.name; }, () => {});
  return me;
}

async function signedIn() {
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
  $("page").hidden = false;
  await route();
}

async function route() {
  const hash = location.hash || "#/browsers";
  const found = ROUTES.map(([pattern, name, params]) => [hash.match(pattern), name, params]).find(([m]) => m);
  const mine = ++generation;
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup failing must not keep the next page away */ }
    cleanup = null;
  }
  // Each render gets a box of its own: a render overtaken by a later one (an await still pending)
  // appends into a detached box, never beside the page that replaced it.
  const page = $("page");
  const root = document.createElement("div");
  page.replaceChildren(root);
  for (const link of document.querySelectorAll("#nav a[data-section]")) {
    link.classList.toggle("active", found && link.dataset.section === SECTION[found[1]]);
  }
  if (!found) {
    root.append(notice(`No page at ${hash}.`));
    return;
  }
  const [match, name, params] = found;
  page.dataset.page = name;
  try {
    const module = await import(`./pages/${name}.js`);
    if (mine !== generation) return;
    const done = await module.default(root, params(match));
    if (mine === generation) cleanup = typeof done === "function" ? done : null;
    else if (typeof done === "function") done();
  } catch (error) {
    if (mine !== generation || error.name === "AbortError") return;
    if (error.status === 401) return; // the unauthorized handler shows the sign-in form
    root.append(notice(`This page could not be shown: ${problem(error)}`));
  }
}

function signOut(reason) {
  api.forget();
  if (cleanup) {
    try { cleanup(); } catch { /* leaving anyway */ }
    cleanup = null;
  }
  showSignIn(reason);
}

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("key").value.trim();
  if (!value) return;
  api.remember(value);
  try {
    await whoami();
  } catch (error) {
    api.forget();
    showSignIn(error.status === 401 ? `This key was not accepted: ${problem(error)}` : `Sign-in failed: ${problem(error)}`);
    return;
  }
  $("key").value = "";
  await signedIn();
});
$("sign-out").addEventListener("click", () => signOut());
window.addEventListener("console:unauthorized", (event) => {
  signOut(`Signed out: the server no longer accepts this key (${problem(event.detail)}).`);
});
window.addEventListener("hashchange", () => { if (api.key()) route(); });

(async () => {
  if (!api.key()) return showSignIn();
  try {
    await whoami();
  } catch (error) {
    if (error.status !== 401) showSignIn(`The server could not be asked: ${problem(error)}`);
    return;
  }
  await signedIn();
})();
