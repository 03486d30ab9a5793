// The login screen: an API key in, a session out. Also where an expired session lands, with
// the reason shown above the form.
import { LoginError, login, type Session } from "../api/session";
import { h } from "./dom";

export function loginScreen(notice: string, onSession: (session: Session) => void): HTMLElement {
  const key = h("input", {
    id: "login-key",
    type: "password",
    autocomplete: "off",
    placeholder: "API key (trademesh keys create <name>)",
    required: true,
  });
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const submit = h("button", { type: "submit", id: "login-submit" }, "Log in");
  const form = h(
    "form",
    { id: "login", class: "login" },
    h("h1", {}, "trademesh Studio"),
    notice === "" ? null : h("p", { id: "login-notice", class: "notice" }, notice),
    h("label", { for: "login-key" }, "API key"),
    key,
    submit,
    error,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    login(key.value.trim())
      .then(onSession)
      .catch((reason: unknown) => {
        error.textContent = reason instanceof LoginError ? reason.message : "login failed";
        submit.disabled = false;
        key.select();
      });
  });
  queueMicrotask(() => key.focus());
  return form;
}
