// Sign in or create an account. After it, the page the user asked for (a poll link) opens.

import * as api from './api.js';
import { h } from './dom.js';

export function authView(app) {
  const username = h('input', { id: 'auth-username', name: 'username', autocomplete: 'username', required: true, maxlength: 32, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'auth-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, minlength: 8 });
  const busy = (on) => form.querySelectorAll('button').forEach((button) => { button.disabled = on; });

  async function submit(kind) {
    if (!form.reportValidity()) return;
    busy(true);
    app.alert('');
    try {
      const call = kind === 'register' ? api.register : api.login;
      const answer = await call(username.value, password.value);
      app.signedIn({ ...answer, username: username.value });
    } catch (error) {
      app.error(error.code, error.message);
      busy(false);
    }
  }

  const form = h('form', { class: 'card auth', onsubmit: (event) => { event.preventDefault(); submit('login'); } },
    h('div', { class: 'field' }, h('label', { for: 'auth-username' }, 'Username'), username),
    h('div', { class: 'field' },
      h('label', { for: 'auth-password' }, 'Password'), password,
      h('small', { id: 'auth-password-hint' }, 'At least 8 characters.')),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
      h('button', { type: 'button', onclick: () => submit('register') }, 'Create account')),
  );
  password.setAttribute('aria-describedby', 'auth-password-hint');
  const element = h('section', { class: 'page' },
    h('h1', { tabindex: -1 }, 'Sign in to listwire'),
    h('p', {}, 'Shared lists and live polls. Sign in, or pick a username and password to create an account.'),
    form);
  return { element };
}
