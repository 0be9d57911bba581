// Sign-in: POST /login as JSON; on success go back where the operator came from.
import { api, ApiError } from "./api.js";

const form = document.getElementById("login");
const error = document.getElementById("login-error");

/**
 * Where to go after signing in: only a path on this site (never "//host" or "https://..."), so the link
 * cannot send anyone elsewhere. The server never sees the view (#/alarms): the browser keeps it on this
 * page's URL through the redirect, so it is taken from here.
 */
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  const path = next.startsWith("/") && !next.startsWith("//") ? next : "/";
  return path.includes("#") ? path : path + location.hash;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const button = form.querySelector("button");
  button.disabled = true;
  const data = new FormData(form);
  try {
    await api("/login", { method: "POST", body: { username: data.get("username"), password: data.get("password") } });
    location.assign(nextPath());
  } catch (err) {
    error.textContent =
      err instanceof ApiError && err.status === 401
        ? "Wrong user name or password."
        : `Sign-in failed: ${err instanceof ApiError ? err.detail : err.message}`;
    error.hidden = false;
    form.elements.password.select();
  } finally {
    button.disabled = false;
  }
});
