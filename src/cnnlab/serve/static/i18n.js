// The page's strings: one catalogue per language, served by the app from the "page" section of cnnlab/i18n/LANG.json.
// Language: ?lang=xx, else the last choice (localStorage), else the browser's language, else English.
"use strict";

(() => {
  const LANGS = ["en", "ko"];
  const i18n = { lang: "en", strings: {}, fallback: {} };

  function pick() {
    const asked = new URLSearchParams(location.search).get("lang");
    if (LANGS.includes(asked)) return asked;
    let saved = null;
    try {
      saved = localStorage.getItem("cnnlab-lang");
    } catch {
      // storage can be off (private mode); the browser's language still decides
    }
    if (LANGS.includes(saved)) return saved;
    const browser = (navigator.languages && navigator.languages[0]) || navigator.language || "en";
    return browser.toLowerCase().startsWith("ko") ? "ko" : "en";
  }

  async function fetchStrings(lang) {
    const res = await fetch(`/i18n/${lang}.json`);
    return res.ok ? res.json() : {};
  }

  // t("sure", {p: 97.1}) -> "97.1% sure"; a missing key falls back to English, then to the key itself
  function t(key, vars = {}) {
    const text = i18n.strings[key] ?? i18n.fallback[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  }

  function apply(root = document) {
    for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
    document.documentElement.lang = i18n.lang;
    document.title = t("title");
  }

  async function use(lang, remember = false) {
    i18n.lang = LANGS.includes(lang) ? lang : "en";
    const [strings, fallback] = await Promise.all([
      fetchStrings(i18n.lang),
      i18n.lang === "en" ? null : fetchStrings("en"),
    ]);
    i18n.strings = strings;
    i18n.fallback = fallback || strings;
    if (remember) {
      try {
        localStorage.setItem("cnnlab-lang", i18n.lang);
      } catch {
        // not remembered, still switched
      }
      const url = new URL(location.href);
      url.searchParams.set("lang", i18n.lang);
      history.replaceState(null, "", url);
    }
    apply();
    document.dispatchEvent(new CustomEvent("cnnlab:lang", { detail: i18n.lang }));
  }

  i18n.t = t;
  i18n.use = use;
  i18n.pick = pick;
  i18n.apply = apply;
  window.cnnlabI18n = i18n;
})();
