// The playground page: a chat over the bot core's JSON + SSE API (see src/bot/web/playground.ts).
// Plain browser JavaScript, no build step. Text from the server is always set with textContent, never as HTML.
'use strict';

const REACTIONS = ['👍', '👎', '⭐'];
/** Text labels of the reaction buttons: the emoji is decoration (it shows as an empty box without an emoji font). */
const REACTION_LABELS = { '👍': 'Like', '👎': 'Dislike', '⭐': 'Favourite' };
const $ = (id) => document.getElementById(id);
const list = $('messages');
const elements = new Map(); // message id -> <li>
let presetsFilled = false;

// On a network bind, admin commands need PLAYGROUND_ADMIN_TOKEN: open the page as /#admin-token=TOKEN once;
// the token stays in this tab's sessionStorage (the fragment never reaches the server or its logs).
const tokenInUrl = /(?:^#|&)admin-token=([^&]+)/.exec(location.hash);
if (tokenInUrl) {
  sessionStorage.setItem('playground-admin-token', decodeURIComponent(tokenInUrl[1]));
  history.replaceState(null, '', location.pathname + location.search);
}
function authHeaders() {
  const token = sessionStorage.getItem('playground-admin-token');
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** POSTs JSON; resolves with the parsed answer, throws with the server's error message. */
async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders() }, body: JSON.stringify(body ?? {}) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok && res.status !== 400) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

/** Appends text with `code` spans and line breaks to an element. */
function appendRichText(el, text) {
  text.split('\n').forEach((line, i) => {
    if (i > 0) el.appendChild(document.createElement('br'));
    line.split('`').forEach((part, j) => {
      if (!part) return;
      if (j % 2 === 1) {
        const code = document.createElement('code');
        code.textContent = part;
        el.appendChild(code);
      } else {
        el.appendChild(document.createTextNode(part));
      }
    });
  });
}

/**
 * A button with a text label and an optional emoji before it (decoration, hidden from screen readers). After
 * its action, the focus goes back to the prompt, so the page works with the keyboard alone.
 */
function button(label, onClick, className, emoji) {
  const b = document.createElement('button');
  b.type = 'button';
  if (emoji) {
    const deco = document.createElement('span');
    deco.className = 'emoji';
    deco.setAttribute('aria-hidden', 'true');
    deco.textContent = emoji;
    b.append(deco, ' ');
  }
  b.append(label);
  if (className) b.className = className;
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await onClick(b);
    } catch (err) {
      showLocalError(err.message);
    } finally {
      b.disabled = false;
      $('prompt').focus();
    }
  });
  return b;
}

function showLocalError(text) {
  upsert({ id: `local-${Date.now()}`, from: 'bot', kind: 'error', state: 'failed', text });
}

/** Builds the content of one message. */
function render(m) {
  const li = document.createElement('li');
  li.className = `msg from-${m.from} kind-${m.kind}${m.state ? ` state-${m.state}` : ''}`;
  li.dataset.id = m.id;
  const body = document.createElement('div');
  body.className = 'text';
  if (m.state === 'queued' || m.state === 'working') {
    const spin = document.createElement('span');
    spin.className = 'spinner';
    spin.setAttribute('aria-hidden', 'true');
    li.appendChild(spin);
  }
  appendRichText(body, m.text || '');
  li.appendChild(body);

  if (m.kind === 'training' && typeof m.progress === 'number') {
    const p = document.createElement('progress');
    p.max = 1;
    p.value = m.progress;
    li.appendChild(p);
  }

  if (m.images && m.images.length) {
    const shown = m.kind === 'generation' ? m.images.filter((im) => im.index === undefined) : m.images;
    for (const im of shown) {
      const img = document.createElement('img');
      img.src = im.url;
      img.alt = im.caption || m.text || 'image';
      img.className = 'picture';
      li.appendChild(img);
    }
  }

  if (m.generation && m.state === 'done') {
    const g = m.generation;
    const actions = document.createElement('div');
    actions.className = 'actions';
    if (g.imageIndex === undefined) {
      actions.appendChild(button('Reroll', () => post(`/api/generations/${encodeURIComponent(g.generationId)}/reroll`), undefined, '🎲'));
      actions.appendChild(button('Variations', () => post(`/api/generations/${encodeURIComponent(g.generationId)}/variations`), undefined, '🔀'));
      g.seeds.forEach((_, i) => {
        actions.appendChild(button(`Image ${i + 1}`, () => post(`/api/generations/${encodeURIComponent(g.generationId)}/images/${i}`), 'single', '🖼'));
      });
    }
    const reactions = document.createElement('div');
    reactions.className = 'reactions';
    for (const r of REACTIONS) {
      const on = Boolean(m.reactions && m.reactions[r]);
      const b = button(REACTION_LABELS[r], async () => {
        const res = await post('/api/reactions', { messageId: m.id, reaction: r, added: b.getAttribute('aria-pressed') !== 'true' });
        if (res.error) throw new Error(res.error);
      }, 'reaction', r);
      b.dataset.reaction = r;
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
      b.title = { '👍': 'I like it', '👎': 'I do not like it', '⭐': 'Favourite' }[r];
      reactions.appendChild(b);
    }
    actions.appendChild(reactions);
    li.appendChild(actions);
  }
  return li;
}

/** Inserts or replaces a message, keeps the view at the bottom when it was there. */
function upsert(m) {
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const li = render(m);
  const old = elements.get(m.id);
  if (old) old.replaceWith(li);
  else list.appendChild(li);
  elements.set(m.id, li);
  if (atBottom) {
    const toBottom = () => { list.scrollTop = list.scrollHeight; };
    toBottom();
    li.querySelectorAll('img').forEach((img) => img.addEventListener('load', toBottom, { once: true }));
  }
  trackTraining(m);
}

/** Mirrors training messages in the side panel. */
function trackTraining(m) {
  if (m.kind === 'training') {
    $('train-status').textContent = m.text;
    if (typeof m.progress === 'number') $('train-progress').value = m.progress;
  } else if (m.trainingImage && m.images && m.images[0]) {
    const img = m.trainingImage === 'loss' ? $('train-loss') : $('train-samples');
    img.src = m.images[0].url;
    img.hidden = false;
  }
}

function connect() {
  const events = new EventSource('/api/events');
  events.addEventListener('hello', (e) => {
    const { messages } = JSON.parse(e.data);
    list.replaceChildren();
    elements.clear();
    messages.forEach(upsert);
    const last = list.lastElementChild;
    if (last) last.scrollIntoView({ block: 'end' });
  });
  events.addEventListener('message', (e) => upsert(JSON.parse(e.data)));
  events.addEventListener('bye', () => {
    setStatus(false, 'The playground stopped.');
    events.close();
  });
  events.onerror = () => setStatus(false, 'Connection lost; retrying…');
}

function setStatus(ready, reason) {
  const pill = $('status');
  pill.textContent = ready ? 'ready' : 'not ready';
  pill.className = `pill ${ready ? 'ok' : 'bad'}`;
  pill.title = reason || '';
}

async function refreshState() {
  try {
    const s = await (await fetch('/api/state', { headers: authHeaders() })).json();
    setStatus(s.ready, s.reason);
    $('model').textContent = s.model ? `model ${s.model.name}` : (s.reason || '');
    if (!presetsFilled && Array.isArray(s.presets)) {
      const select = $('train-preset');
      for (const name of s.presets) {
        const o = document.createElement('option');
        o.value = name;
        o.textContent = name;
        if (name === 'tiny') o.selected = true;
        select.appendChild(o);
      }
      presetsFilled = true;
    }
    $('admin-note').textContent = s.admin ? `(you are the local admin, ${s.user})` : '(admins only: open the page with #admin-token=…)';
    if (s.training && !s.training.busy && $('train-status').textContent === 'No training run yet.') $('train-status').textContent = s.training.text;
  } catch {
    setStatus(false, 'The playground does not answer.');
  }
}

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('prompt');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  try {
    await post('/api/command', { text });
  } catch (err) {
    showLocalError(err.message);
  } finally {
    input.focus(); // also after a click on Send: the next prompt can be typed at once
  }
});

$('train-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const epochs = $('train-epochs').value.trim();
  try {
    await post('/api/train/start', {
      preset: $('train-preset').value,
      epochs: epochs ? Number(epochs) : undefined,
      dataset: $('train-dataset').value.trim() || 'synthetic',
    });
  } catch (err) {
    showLocalError(err.message);
  }
});

$('train-stop').addEventListener('click', async () => {
  try {
    await post('/api/train/stop');
  } catch (err) {
    showLocalError(err.message);
  }
});

connect();
refreshState();
setInterval(refreshState, 5000);
