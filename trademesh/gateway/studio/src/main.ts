// Studio's entry: the app when a live session is stored, else the login screen.
import "./styles.css";
import { hasStoredSession, loadSession, saveSession, type Session } from "./api/session";
import { SESSION_EXPIRED, startApp } from "./app";
import { fill } from "./ui/dom";
import { loginScreen } from "./ui/login";
import { holdWhilePressed } from "./ui/press";

const root = document.getElementById("app");
if (root === null) throw new Error("index.html has no #app element");
const app: HTMLElement = root;
holdWhilePressed();

function showLogin(notice: string): void {
  document.body.dataset.view = "login";
  fill(
    app,
    loginScreen(notice, (session) => {
      saveSession(session);
      showApp(session);
    }),
  );
}

function showApp(session: Session): void {
  document.body.dataset.view = "app";
  startApp(app, session, showLogin);
}

const stored = loadSession();
if (stored !== null) showApp(stored);
else showLogin(hasStoredSession() ? SESSION_EXPIRED : "");
