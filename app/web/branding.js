"use strict";
// The account's branding on our pages (view, live, replay): its product name in the header, its logo,
// its accent on buttons and highlights, and a "powered by" line. The server writes the resolved
// branding of the link's account into <meta name="bctrl-branding"> (HTML-escaped JSON); the view
// page also gets it with each /view/state answer. Every value is user input: it is set as text, as an
// element property or as a CSS custom property after a format check, never as markup.
window.Branding = (() => {
  const HEX = /^#[0-9a-fA-F]{6}$/;
  const DEFAULT_NAME = "BCTRL";
  const baseTitle = document.title;
  let current = null;

  // Black or white text, whichever reads better on `hex` (WCAG relative luminance).
  function textOn(hex) {
    const [r, g, b] = [1, 3, 5].map((i) => {
      const c = parseInt(hex.slice(i, i + 2), 16) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return (luminance + 0.05) / 0.05 > 1.05 / (luminance + 0.05) ? "#111111" : "#ffffff";
  }

  // A page of ours shown inside another page of ours (the live or replay page in the view page's
  // frame): the outer page carries the name, logo and "powered by"; the inner one only the colours.
  function framedByUs() {
    try { return window.parent !== window && window.parent.location.origin === location.origin; }
    catch { return false; }   // a cross-origin parent: someone else's page embeds ours
  }

  function fromMeta() {
    const meta = document.querySelector('meta[name="bctrl-branding"]');
    if (!meta || !meta.content) return null;
    try { return JSON.parse(meta.content); } catch { return null; }
  }

  function apply(branding) {
    if (!branding || typeof branding !== "object") return;
    current = window.__branding = branding;
    const style = document.documentElement.style;
    const tokens = branding.tokens || {};
    if (HEX.test(tokens.accent || "")) {
      style.setProperty("--accent", tokens.accent);
      style.setProperty("--on-accent", textOn(tokens.accent));
    }
    if (HEX.test(tokens.accentBorder || "")) style.setProperty("--accent-border", tokens.accentBorder);
    if (HEX.test(tokens.accentSoft || "")) style.setProperty("--accent-soft", tokens.accentSoft);
    const name = typeof branding.productName === "string" && branding.productName.trim()
      ? branding.productName : DEFAULT_NAME;
    for (const el of document.querySelectorAll("[data-brand=name]")) el.textContent = name;
    document.title = `${name} · ${baseTitle}`;
    const logo = typeof branding.logo === "string" && branding.logo.startsWith("https://") ? branding.logo : null;
    for (const img of document.querySelectorAll("img[data-brand=logo]")) {
      img.onerror = () => { img.dataset.failed = img.getAttribute("src") || ""; img.hidden = true; };
      if (logo) {
        if (img.getAttribute("src") !== logo) img.src = logo;
        img.alt = name; img.hidden = img.dataset.failed === logo;   // a logo that cannot load shows nothing
      } else { img.removeAttribute("src"); img.alt = ""; img.hidden = true; }
    }
    // "Powered by BCTRL" under a product called BCTRL would say nothing: shown for another name only.
    const powered = branding.showPoweredBy === true && name !== DEFAULT_NAME;
    for (const el of document.querySelectorAll("[data-brand=powered]")) el.hidden = !powered;
  }

  if (framedByUs()) document.documentElement.classList.add("framed");
  apply(fromMeta());
  return { apply, current: () => current };
})();
