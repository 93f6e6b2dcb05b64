// The supervisor's statistics section (web/templates/_stats.html): filters, the view from
// GET /api/stats drawn as Chart.js charts and a table, and the CSV link for the same view.
// Loads when its screen is first shown (after sign-in). Imported by supervisor.js.
import { $, errorText, fetchJSON, loadDepartments, serviceDepartments } from './common.js';
import { hallDate, hallDaysAgo } from './hall_time.js';
import { departmentName, t } from './i18n.js';

const NO_HALL = '\u0000'; // the select's value for "no registered kiosk" (hall '')
const COLUMNS = [
  ['consultations', 'stats_consultations'], ['answered', 'stats_answered'],
  ['abandoned', 'stats_abandoned'], ['callbacks', 'stats_callbacks'],
  ['wait_p50_s', 'stats_wait_p50'], ['wait_p90_s', 'stats_wait_p90'],
  ['talk_avg_s', 'stats_talk_avg'], ['joint_share', 'stats_joint_share'],
  ['rated', 'stats_rated'], ['satisfaction', 'stats_satisfaction'],
  ['cases_open', 'stats_cases_open'], ['cases_closed', 'stats_cases_closed'],
  ['cases_overdue', 'stats_cases_overdue'], ['cases_on_time_rate', 'stats_cases_on_time'],
];
const SHARES = new Set(['joint_share', 'satisfaction', 'cases_on_time_rate']);
const state = { departments: [], charts: {}, loaded: false, chartLib: null, serial: 0 };

// Chart.js's UMD build (served from web/node_modules/chart.js/dist) sets globalThis.Chart when
// imported; its ES build imports a bare package name, which a page cannot resolve without an
// (inline) import map. Imported when first needed: without it (npm ci not run) the table still
// shows and the rest of the supervisor page works.
function chartLib() {
  state.chartLib ??= import('/static/vendor/chart.js/chart.umd.min.js').then(
    () => Boolean(globalThis.Chart), () => false);
  return state.chartLib;
}

function params() {
  const out = new URLSearchParams();
  for (const [name, testid] of [['from', 'stats-from'], ['to', 'stats-to'],
    ['group', 'stats-group'], ['department', 'stats-department']]) {
    const value = $(testid).value;
    if (value) out.set(name, value);
  }
  const hall = $('stats-hall').value;
  if (hall) out.set('hall', hall === NO_HALL ? '' : hall);
  return out;
}

function cellText(name, value) {
  if (value === null || value === undefined) return '—';
  if (SHARES.has(name)) return `${(value * 100).toFixed(1)}%`;
  return String(value);
}

function renderTable(view) {
  const head = $('stats-table-head');
  head.replaceChildren(...[['period', 'stats_period'], ...COLUMNS].map(([, key]) => {
    const th = document.createElement('th');
    th.textContent = t(key);
    return th;
  }));
  const row = (label, values, testid) => {
    const tr = document.createElement('tr');
    tr.dataset.testid = testid;
    tr.dataset.period = label;
    const first = document.createElement('td');
    first.textContent = label;
    tr.append(first, ...COLUMNS.map(([name]) => {
      const td = document.createElement('td');
      td.dataset.field = name;
      td.textContent = cellText(name, values[name]);
      return td;
    }));
    return tr;
  };
  $('stats-table-body').replaceChildren(
    ...view.rows.map((r) => row(r.period, r, 'stats-row')));
  $('stats-table-total').replaceChildren(row(t('stats_total'), view.totals, 'stats-total'));
}

function draw(name, config) {
  const holder = document.querySelector(`[data-testid="stats-chart"][data-chart="${name}"]`);
  if (state.charts[name]) state.charts[name].destroy();
  state.charts[name] = new globalThis.Chart(holder.querySelector('canvas'), {
    ...config,
    options: { animation: false, responsive: true, maintainAspectRatio: false,
      ...(config.options || {}) },
  });
  holder.dataset.ready = '1';
}

function renderCharts(view) {
  const labels = view.rows.map((r) => r.period);
  draw('volume', { type: 'bar', data: { labels, datasets: [
    { label: t('stats_consultations'), data: view.rows.map((r) => r.consultations) },
    { label: t('stats_answered'), data: view.rows.map((r) => r.answered) },
    { label: t('stats_abandoned'), data: view.rows.map((r) => r.abandoned) },
    { label: t('stats_callbacks'), data: view.rows.map((r) => r.callbacks) },
  ] } });
  draw('wait', { type: 'line', data: { labels, datasets: [
    { label: t('stats_wait_p50'), data: view.rows.map((r) => r.wait_p50_s) },
    { label: t('stats_wait_p90'), data: view.rows.map((r) => r.wait_p90_s) },
    { label: t('stats_talk_avg'), data: view.rows.map((r) => r.talk_avg_s) },
  ] } });
  const scores = ['5', '4', '3', '2', '1'];
  draw('ratings', { type: 'bar', data: {
    labels: scores.map((s) => t(`stats_rating_${s}`)),
    datasets: [{ label: t('stats_rated'), data: scores.map((s) => view.totals.ratings[s]) }],
  } });
  draw('departments', { type: 'bar', data: {
    labels: view.departments.map((d) => departmentName(state.departments, d.department)),
    datasets: [
      { label: t('stats_consultations'), data: view.departments.map((d) => d.consultations) },
      { label: t('stats_answered'), data: view.departments.map((d) => d.answered) },
      { label: t('stats_joint'), data: view.departments.map((d) => d.joint) },
    ],
  } });
  draw('cases', { type: 'bar', data: {
    labels: view.departments.map((d) => departmentName(state.departments, d.department)),
    datasets: [
      { label: t('stats_cases_open'), data: view.departments.map((d) => d.cases_open) },
      { label: t('stats_cases_closed'), data: view.departments.map((d) => d.cases_closed) },
      { label: t('stats_cases_overdue'), data: view.departments.map((d) => d.cases_overdue) },
    ],
  } });
}

function fillHalls(names) {
  const select = $('stats-hall');
  const current = select.value;
  const option = (value, text) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    return o;
  };
  select.replaceChildren(option('', t('stats_all_halls')), ...names.map(
    (name) => option(name === '' ? NO_HALL : name, name === '' ? t('stats_no_hall') : name)));
  if ([...select.options].some((o) => o.value === current)) select.value = current;
}

async function load() {
  const error = $('stats-error');
  const query = params();
  $('stats-csv').href = `/api/stats.csv?${query}`;
  // Only the latest request shows: an earlier one that answers later is dropped.
  const serial = ++state.serial;
  let view;
  try {
    view = await fetchJSON(`/api/stats?${query}`);
  } catch (err) {
    if (serial !== state.serial) return;
    error.textContent = errorText(err);
    error.hidden = false;
    return;
  }
  const charts = await chartLib();
  if (serial !== state.serial) return;
  error.hidden = true;
  fillHalls(view.hall_names);
  renderTable(view);
  if (charts) {
    renderCharts(view);
  } else {
    error.textContent = t('stats_charts_missing');
    error.hidden = false;
  }
  $('stats').dataset.loaded = String(Date.now());
}

async function start() {
  if (state.loaded) return;
  state.loaded = true;
  $('stats-to').value = hallDate();
  $('stats-from').value = hallDaysAgo(29);
  try {
    state.departments = await loadDepartments();
  } catch {
    state.departments = [];
  }
  const select = $('stats-department');
  const all = document.createElement('option');
  all.value = '';
  all.textContent = t('stats_all_departments');
  select.replaceChildren(all, ...serviceDepartments(state.departments).map((d) => {
    const o = document.createElement('option');
    o.value = d.id;
    o.textContent = departmentName(state.departments, d.id);
    return o;
  }));
  fillHalls([]);
  $('stats-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  await load();
}

const section = $('stats');
const screen = section?.closest('[data-screen]');
if (section && screen) {
  const watch = () => { if (!screen.hidden) start(); };
  new MutationObserver(watch).observe(screen, { attributes: true, attributeFilter: ['hidden'] });
  watch();
}
