// Sign-in: POST /login as JSON; on success go back where the operator came from.
import { api, ApiError } from "./api.js";

const form = document.getElementById("login");
const error = document.getElementById("login-error");

/**
 * The page to go to once signed in, as the server chose it from `next` (a path on this site, else "/"):
 * one rule, the server's, for this script and for a plain form. The server never sees the view
 * (#/alarms): the browser keeps it on this page's URL through the redirect, so it is taken from here
 * (a fragment after a path cannot leave the site).
 */
function target(next) {
  return next.includes("#") ? next : next + location.hash;
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const button = form.querySelector("button");
  button.disabled = true;
  const data = new FormData(form);
  try {
    const next = new URLSearchParams(location.search).get("next");
    const me = await api("/login", {
      method: "POST",
      params: { next },
      body: { username: data.get("username"), password: data.get("password") },
    });
    location.assign(target(me.next));
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
