/* actions.js: the moves of the closed loop, where the case is. The hazard panel shows exactly
 * the moves the API allows this user on this hazard (allowed_actions), in Chinese, each with
 * its form: 立案 / 不予立案 with a reason, 派遣 with a picker of the people in scope (role,
 * grid, open workload, distance) or a department, 处置 / 反馈 with a note and up to 5 photos,
 * 核查 pass (and 结案) or fail (返工, with a reason), 吹哨, 标记重复, 重新打开, 备注.
 *
 * Every move sends If-Match with the ETag the user saw. When someone else moved the case
 * first (412), or the move is no longer possible (409), the panel says so, reloads, and keeps
 * what the user typed, chose and photographed (a draft per hazard) for them to send again. */

import { api, moveHazard } from '../lib/api.js';
import { esc, show, toast } from '../lib/dom.js';
import { fmtDistance } from '../lib/format.js';
import { ACTION_NAMES, errorText } from '../lib/i18n.js';
import { openLoginDialog, whoAmI } from '../lib/session.js';
import { GM } from './context.js';

const ORDER = [
  'accept', 'reject', 'dispatch', 'start', 'resolve', 'verify', 'fail_verification', 'close',
  'send_back', 'approve_send_back', 'refuse_send_back', 'request_extension', 'approve_extension',
  'refuse_extension', 'request_suspension', 'approve_suspension', 'refuse_suspension', 'resume',
  'request_void', 'approve_void', 'refuse_void', 'escalate', 'mark_duplicate', 'reopen',
  'callback', 'rework', 'comment',
];
const PRIMARY = new Set(['accept', 'dispatch', 'start', 'resolve', 'verify', 'close', 'approve_extension']);
const MAX_PHOTOS = 5;

// What each move's form asks for. note: 'required' | 'optional'; noteLabel: its label.
const FORMS = {
  accept: { note: 'optional', noteLabel: '立案意见（可选）', button: '确认立案' },
  reject: { note: 'required', noteLabel: '不予立案的理由', button: '不予立案' },
  dispatch: { note: 'optional', noteLabel: '派遣说明（可选）', picker: true, button: '确认派遣' },
  start: { note: 'optional', noteLabel: '处置说明（可选）', photos: true, button: '开始处置' },
  resolve: { note: 'required', noteLabel: '处置情况', photos: true, button: '提交反馈' },
  verify: { note: 'optional', noteLabel: '核查意见（可选）', closeToo: true, button: '核查通过' },
  fail_verification: { note: 'required', noteLabel: '不通过的理由（返工要求）', button: '核查不通过，返工' },
  close: { note: 'optional', noteLabel: '结案意见（可选）', button: '确认结案' },
  send_back: { note: 'required', noteLabel: '退回的理由', button: '申请退回' },
  request_extension: { note: 'required', noteLabel: '延期理由', days: true, button: '提交延期申请' },
  approve_extension: { note: 'optional', noteLabel: '审批意见（可选）', button: '同意延期' },
  refuse_extension: { note: 'required', noteLabel: '不同意的理由', button: '不同意延期' },
  approve_send_back: { note: 'optional', noteLabel: '审批意见（可选）', button: '同意退回' },
  refuse_send_back: { note: 'required', noteLabel: '不同意的理由', button: '不同意退回' },
  request_suspension: { note: 'required', noteLabel: '缓办理由', button: '提交缓办申请' },
  approve_suspension: { note: 'optional', noteLabel: '审批意见（可选）', button: '同意缓办' },
  refuse_suspension: { note: 'required', noteLabel: '不同意的理由', button: '不同意缓办' },
  resume: { note: 'optional', noteLabel: '说明（可选）', button: '恢复办理' },
  request_void: { note: 'required', noteLabel: '作废理由', button: '提交作废申请' },
  approve_void: { note: 'optional', noteLabel: '审批意见（可选）', button: '同意作废' },
  refuse_void: { note: 'required', noteLabel: '不同意的理由', button: '不同意作废' },
  callback: { note: 'optional', noteLabel: '回访记录（可选）', rating: true, button: '保存回访' },
  rework: { note: 'required', noteLabel: '返工要求', button: '退回返工' },
  escalate: { note: 'optional', noteLabel: '吹哨说明（可选）', department: true, button: '吹哨' },
  mark_duplicate: { note: 'optional', noteLabel: '说明（可选）', duplicateOf: true, button: '标记为重复' },
  reopen: { note: 'required', noteLabel: '重新打开的理由', button: '重新打开' },
  comment: { note: 'optional', noteLabel: '备注内容', photos: true, button: '添加备注' },
};

const drafts = new Map(); // hazard id → {action, note, person, department, duplicateOf, days, files, closeToo}

function sortedMoves(allowed) {
  return ORDER.filter((a) => allowed.indexOf(a) >= 0);
}

function formHtml(action, draft, p) {
  const spec = FORMS[action] || { note: 'optional', noteLabel: '说明', button: ACTION_NAMES[action] || action };
  const d = draft || {};
  let body = '';
  if (spec.picker) {
    body +=
      '<div class="gm-field">派给（辖区内人员，按距离排序）' +
      '<input type="search" class="gm-picker-filter" data-gm="picker-filter" placeholder="输入姓名或网格筛选">' +
      '<ul class="gm-picker" data-gm="picker"><li class="gm-muted">正在加载可派遣人员…</li></ul></div>' +
      '<label class="gm-field">或派往职能部门<select name="department" data-gm="department"><option value="">（不派往部门）</option></select></label>';
  }
  if (spec.department) {
    body +=
      '<label class="gm-field">吹哨对象<select name="department" data-gm="department"><option value="">上级网格负责人</option></select></label>';
  }
  if (spec.duplicateOf) {
    body += `<label class="gm-field">原隐患编号 <em>*</em><input name="duplicate_of" data-gm="duplicate-of" placeholder="例如 YH20261130-000001" value="${esc(d.duplicateOf || '')}"></label>`;
  }
  if (spec.rating) {
    body +=
      '<label class="gm-field">群众评价 <em>*</em><select name="rating" data-gm="rating">' +
      '<option value="satisfied">满意</option><option value="basically_satisfied">基本满意</option>' +
      '<option value="dissatisfied">不满意</option></select></label>';
  }
  if (spec.days) {
    body += `<label class="gm-field">延长天数 <em>*</em><input name="days" type="number" min="1" max="90" value="${esc(d.days || 3)}" data-gm="days"></label>`;
  }
  body +=
    `<label class="gm-field">${esc(spec.noteLabel)}${spec.note === 'required' ? ' <em>*</em>' : ''}` +
    `<textarea name="note" rows="3" maxlength="4000" data-gm="note">${esc(d.note || '')}</textarea></label>`;
  if (spec.photos) {
    body +=
      `<div class="gm-field">照片（可选，最多 ${MAX_PHOTOS} 张）<label class="gm-file gm-btn"><i class="fa-solid fa-camera"></i> ` +
      '<span data-gm="photos-text">拍照或选择照片</span><input type="file" name="photos" data-gm="photos" accept="image/jpeg,image/png,image/webp,image/*" multiple></label>' +
      '<div class="gm-photos gm-photos-small" data-gm="photo-previews"></div></div>';
  }
  if (spec.closeToo && p && p.allowed_close_after_verify !== false) {
    body += `<label class="gm-check gm-field-inline"><input type="checkbox" name="close_too" data-gm="close-too"${d.closeToo === false ? '' : ' checked'}> 核查通过后直接结案</label>`;
  }
  return (
    `<form class="gm-move-form" data-move="${esc(action)}" novalidate><h4>${esc(ACTION_NAMES[action] || action)}</h4>${body}` +
    '<div class="gm-error" data-gm="move-error" hidden></div>' +
    `<div class="gm-row"><button type="submit" class="gm-btn gm-primary" data-gm="move-submit">${esc(spec.button)}</button>` +
    '<button type="button" class="gm-btn" data-gm="move-cancel">取消</button></div></form>'
  );
}

async function loadCandidates(form, hazardId, draft) {
  const list = form.querySelector('[data-gm=picker]');
  const select = form.querySelector('[data-gm=department]');
  let res;
  try {
    res = await api(`/api/v1/hazards/${hazardId}/candidates`);
  } catch (e) {
    list.innerHTML = `<li class="gm-error">${esc(errorText(e))}</li>`;
    return;
  }
  const people = res.people || [];
  list.innerHTML = people.length
    ? people
        .map((c) => {
          const checked = draft && draft.person === c.person_id ? ' checked' : '';
          const where = [c.grid_context, c.grid_name].filter(Boolean).join(' › ');
          return (
            `<li data-person="${c.person_id}" data-search="${esc(`${c.name} ${where} ${c.role_name}`)}"><label>` +
            `<input type="radio" name="person" value="${c.person_id}"${checked}>` +
            `<span class="gm-cand"><b>${esc(c.name)}</b> <span class="gm-tag">${esc(c.role_name)}</span>` +
            (c.in_grid ? ' <span class="gm-tag gm-tag-green">本网格</span>' : '') +
            `<span class="gm-cand-meta">${esc(where)} · 在办 <b data-gm="workload">${esc(c.open_tasks)}</b> 件` +
            `${c.distance_m != null ? ` · 距离 ${esc(fmtDistance(c.distance_m))}` : ''}</span></span></label></li>`
          );
        })
        .join('')
    : '<li class="gm-muted">您的辖区内暂无可派遣的人员</li>';
  for (const d of res.departments || []) {
    const opt = document.createElement('option');
    opt.value = d.code;
    opt.textContent = d.name;
    if (draft && draft.department === d.code) opt.selected = true;
    select.appendChild(opt);
  }
  const filter = form.querySelector('[data-gm=picker-filter]');
  filter.addEventListener('input', () => {
    const q = filter.value.trim();
    for (const li of list.querySelectorAll('li[data-person]')) li.hidden = q !== '' && li.getAttribute('data-search').indexOf(q) < 0;
  });
}

async function loadDepartments(form, hazardId, draft) {
  const select = form.querySelector('[data-gm=department]');
  try {
    const res = await api(`/api/v1/hazards/${hazardId}/candidates`);
    for (const d of res.departments || []) {
      const opt = document.createElement('option');
      opt.value = d.code;
      opt.textContent = d.name;
      if (draft && draft.department === d.code) opt.selected = true;
      select.appendChild(opt);
    }
  } catch (e) {
    /* the parent grid's leader stays the choice */
  }
}

function setFiles(input, files) {
  if (!files || !files.length) return;
  const dt = new DataTransfer();
  for (const f of files) dt.items.add(f);
  input.files = dt.files;
}

function previewPhotos(form) {
  const input = form.querySelector('[data-gm=photos]');
  if (!input) return;
  const box = form.querySelector('[data-gm=photo-previews]');
  const text = form.querySelector('[data-gm=photos-text]');
  const files = Array.from(input.files || []);
  text.textContent = files.length
    ? `已选 ${Math.min(files.length, MAX_PHOTOS)} 张照片${files.length > MAX_PHOTOS ? `（只取前 ${MAX_PHOTOS} 张）` : ''}`
    : '拍照或选择照片';
  box.innerHTML = files
    .slice(0, MAX_PHOTOS)
    .map((f) => `<img alt="待上传的照片" src="${esc(URL.createObjectURL(f))}">`)
    .join('');
}

/** What the user entered in a move form (kept as the draft). */
function readForm(form, action) {
  const get = (sel) => form.querySelector(sel);
  const person = get('input[name=person]:checked');
  const files = get('[data-gm=photos]') ? Array.from(get('[data-gm=photos]').files || []).slice(0, MAX_PHOTOS) : [];
  return {
    action,
    note: get('[data-gm=note]').value.trim(),
    person: person ? +person.value : null,
    department: get('[data-gm=department]') ? get('[data-gm=department]').value : '',
    duplicateOf: get('[data-gm=duplicate-of]') ? get('[data-gm=duplicate-of]').value.trim() : '',
    days: get('[data-gm=days]') ? +get('[data-gm=days]').value : null,
    rating: get('[data-gm=rating]') ? get('[data-gm=rating]').value : null,
    closeToo: get('[data-gm=close-too]') ? get('[data-gm=close-too]').checked : false,
    files,
  };
}

function validate(draft) {
  const spec = FORMS[draft.action] || {};
  if (spec.note === 'required' && !draft.note) return `请填写${spec.noteLabel}`;
  if (draft.action === 'dispatch' && !draft.person && !draft.department) return '请选择处置人或职能部门';
  if (draft.action === 'mark_duplicate' && !draft.duplicateOf) return '请填写原隐患编号';
  if (draft.action === 'comment' && !draft.note && !draft.files.length) return '请填写备注或添加照片';
  if (spec.days && !(draft.days >= 1 && draft.days <= 90)) return '延长天数应为 1 至 90 天';
  return null;
}

function fieldsOf(draft) {
  const f = { action: draft.action, note: draft.note || undefined };
  if (draft.action === 'dispatch') {
    if (draft.person) f.assignee_person_id = draft.person;
    if (draft.department) f.assignee_department = draft.department;
  }
  if (draft.action === 'escalate' && draft.department) f.assignee_department = draft.department;
  if (draft.action === 'mark_duplicate') f.duplicate_of = draft.duplicateOf;
  if (draft.action === 'request_extension') f.extension_days = draft.days;
  if (draft.action === 'callback') f.rating = draft.rating;
  return f;
}

const DONE = {
  accept: '已立案',
  reject: '已作不予立案处理',
  dispatch: '已派遣',
  start: '已开始处置',
  resolve: '已提交处置反馈，待社区核查',
  verify: '核查通过',
  fail_verification: '核查不通过，已退回返工',
  close: '已结案',
  send_back: '退回申请已提交，待社区审批',
  request_extension: '延期申请已提交，待社区审批',
  approve_extension: '已同意延期',
  refuse_extension: '已不同意延期',
  approve_send_back: '已同意退回，待重新派遣',
  refuse_send_back: '已不同意退回',
  request_suspension: '缓办申请已提交，待上级审批',
  approve_suspension: '已同意缓办，计时暂停',
  refuse_suspension: '已不同意缓办',
  resume: '已恢复办理',
  request_void: '作废申请已提交，待上级审批',
  approve_void: '已作废',
  refuse_void: '已不同意作废',
  callback: '回访已记录',
  rework: '已退回返工',
  escalate: '已吹哨',
  mark_duplicate: '已标记为重复件',
  reopen: '已重新打开',
  comment: '备注已添加',
};

/**
 * Render the move buttons (and an open form) for a hazard into container.
 * hooks: {reload(notice), changed()}.
 */
export async function renderActions(container, feature, etag, hooks) {
  const p = feature.properties;
  const id = feature.id;
  const allowed = p.allowed_actions;
  if (!allowed) {
    const me = await whoAmI();
    if (me.anonymous) {
      container.innerHTML = '<p class="gm-muted gm-login-hint"><i class="fa-solid fa-lock"></i> 工作人员<button type="button" class="gm-link" data-gm="moves-login">登录</button>后可在此办理。</p>';
      container.querySelector('[data-gm=moves-login]').addEventListener('click', () => openLoginDialog(() => hooks.reload()));
    }
    return;
  }
  const moves = sortedMoves(allowed);
  const draft = drafts.get(id);
  let html = '';
  if (moves.length) {
    html +=
      '<h3>办理</h3><div class="gm-move-buttons">' +
      moves
        .map((a) => `<button type="button" class="gm-btn${PRIMARY.has(a) ? ' gm-go' : ''}" data-move-open="${a}">${esc(ACTION_NAMES[a] || a)}</button>`)
        .join('') +
      '</div>';
  } else {
    html += '<p class="gm-muted" data-gm="no-moves">当前状态下您无可办理的操作。</p>';
  }
  if (draft && moves.indexOf(draft.action) < 0) {
    // The move the user prepared is gone (someone else moved the case): keep their text.
    html +=
      `<div class="gm-draft" data-gm="draft"><p>您刚才准备的「${esc(ACTION_NAMES[draft.action] || draft.action)}」已无法办理（当前状态：${esc(p.status_name)}）。您填写的内容保留如下：</p>` +
      `<textarea readonly rows="3" data-gm="draft-note">${esc(draft.note)}</textarea>` +
      (moves.indexOf('comment') >= 0 ? '<button type="button" class="gm-btn" data-gm="draft-comment">作为备注提交</button> ' : '') +
      '<button type="button" class="gm-link" data-gm="draft-drop">不再保留</button></div>';
  }
  html += '<div data-gm="move-form-box"></div>';
  container.innerHTML = html;
  const box = container.querySelector('[data-gm=move-form-box]');

  const open = (action, fromDraft) => {
    for (const b of container.querySelectorAll('[data-move-open]')) b.classList.toggle('gm-on', b.getAttribute('data-move-open') === action);
    const d = fromDraft && fromDraft.action === action ? fromDraft : null;
    box.innerHTML = formHtml(action, d, p);
    const form = box.querySelector('form');
    const photos = form.querySelector('[data-gm=photos]');
    if (photos) {
      if (d) setFiles(photos, d.files);
      photos.addEventListener('change', () => previewPhotos(form));
      previewPhotos(form);
    }
    if (FORMS[action] && FORMS[action].picker) loadCandidates(form, id, d);
    if (FORMS[action] && FORMS[action].department && !FORMS[action].picker) loadDepartments(form, id, d);
    form.querySelector('[data-gm=move-cancel]').addEventListener('click', () => {
      drafts.delete(id);
      box.innerHTML = '';
      for (const b of container.querySelectorAll('[data-move-open]')) b.classList.remove('gm-on');
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      submit(form, action);
    });
    const note = form.querySelector('[data-gm=note]');
    if (!d && window.innerWidth > 640) note.focus();
  };

  const submit = async (form, action) => {
    const err = form.querySelector('[data-gm=move-error]');
    show(err, false);
    const d = readForm(form, action);
    const problem = validate(d);
    if (problem) {
      err.textContent = problem;
      show(err, true);
      return;
    }
    const button = form.querySelector('[data-gm=move-submit]');
    button.disabled = true;
    button.textContent = '正在提交…';
    drafts.set(id, d);
    try {
      let r = await moveHazard(id, etag, fieldsOf(d), d.files);
      if (action === 'verify' && d.closeToo) {
        r = await moveHazard(id, r.etag, { action: 'close' }, null);
        toast('核查通过，已结案', 'ok');
      } else {
        toast(DONE[action] || '已提交', 'ok');
      }
      drafts.delete(id);
      hooks.changed();
      hooks.reload();
    } catch (e) {
      if (e.status === 412 || e.status === 409 || (e.status === 428 && e.code === 'precondition_required')) {
        hooks.changed();
        hooks.reload('此隐患刚刚已被他人处理，已为您重新载入最新状态。您填写的内容已保留，请确认后再提交。');
        return;
      }
      button.disabled = false;
      button.textContent = (FORMS[action] || {}).button || '提交';
      err.textContent = `提交失败：${errorText(e)}`;
      show(err, true);
    }
  };

  container.addEventListener('click', (e) => {
    const b = e.target.closest('[data-move-open],[data-gm=draft-comment],[data-gm=draft-drop]');
    if (!b) return;
    if (b.hasAttribute('data-move-open')) open(b.getAttribute('data-move-open'), drafts.get(id));
    else if (b.getAttribute('data-gm') === 'draft-drop') {
      drafts.delete(id);
      container.querySelector('[data-gm=draft]').remove();
    } else {
      const d = drafts.get(id);
      drafts.set(id, { ...d, action: 'comment' });
      open('comment', drafts.get(id));
    }
  });
  if (draft && moves.indexOf(draft.action) >= 0) open(draft.action, draft);
  void GM;
}
