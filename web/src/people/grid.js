/* grid.js: one grid on the 人员 screen: its leader (or the gap, in red, with a link to the
 * coverage check), its people by role with phones and since-when, who is scheduled, and who
 * held roles before, each change with who made it and why. */

import { esc } from '../lib/dom.js';
import { fmtDate, fmtTime } from '../lib/format.js';

function phones(p) {
  const out = [];
  if (p.work_phone) out.push(`<a class="gm-phone" href="tel:${esc(p.work_phone)}"><i class="fa-solid fa-phone"></i> ${esc(p.work_phone)}</a>`);
  if (p.mobile_phone) out.push(`<a class="gm-phone" href="tel:${esc(p.mobile_phone)}"><i class="fa-solid fa-mobile-screen"></i> ${esc(p.mobile_phone)}</a>`);
  return out.join(' ') || '<span class="gm-muted">—</span>';
}

function who(change) {
  if (!change) return '<span class="gm-muted">—</span>';
  return `${esc(change.by)}${change.reason ? `：${esc(change.reason)}` : ''}<div class="gm-muted">${esc(fmtTime(change.at))}</div>`;
}

function rowHtml(a, kind) {
  const p = a;
  const party = p.party_member ? ' <span class="gm-tag gm-tag-red">党员</span>' : '';
  const name = `<button type="button" class="gm-link" data-person="${a.person_id}">${esc(a.person_name)}</button>${party}`;
  if (kind === 'past') {
    return (
      `<tr data-assignment="${a.id}"><td>${esc(a.role_name)}</td><td>${name}</td>` +
      `<td>${esc(fmtDate(a.valid_from))} 至 ${esc(fmtDate(a.valid_to))}</td><td>${who(a.ended_by)}</td></tr>`
    );
  }
  return (
    `<tr data-assignment="${a.id}"${a.is_primary ? ' class="pp-primary"' : ''}>` +
    `<td>${esc(a.role_name)}${a.is_primary ? ' <span class="gm-tag">主责</span>' : ''}</td>` +
    `<td data-gm="person-name">${name}</td><td>${phones(p)}</td>` +
    `<td>${kind === 'future' ? '自 ' : ''}${esc(fmtDate(a.valid_from))}${a.valid_to ? ` 至 ${esc(fmtDate(a.valid_to))}` : ''}</td>` +
    `<td><button type="button" class="gm-link" data-act="end" data-id="${a.id}">结束任职</button></td></tr>`
  );
}

function table(rows, head, empty) {
  if (!rows.length) return `<p class="gm-muted">${empty}</p>`;
  return `<table class="pp-table"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/**
 * The grid's page as HTML. data: GET /api/v1/grids/{id}/assignments; levels: {level:
 * {name, color}}; coverage: whether the user may open the coverage check (admins and street
 * staff, who maintain grids).
 */
export function gridHtml(data, levels, coverage = false) {
  const g = data.grid;
  const lv = levels[g.level] || {};
  const chain = (g.chain || [])
    .map((c) => (c.id === g.id ? `<b>${esc(c.name)}</b>` : `<button type="button" class="gm-link" data-grid="${c.id}">${esc(c.name)}</button>`))
    .join('<span class="gm-sep">›</span>');
  const leadRole = data.leader_role ? data.leader_role.name_zh : '负责人';
  const leader = data.leader;
  const lp = leader || {};
  const gap = data.gap
    ? `<div class="pp-gap-banner" data-gm="gap">` +
      `<i class="fa-solid fa-triangle-exclamation"></i> 此网格缺少${esc(leadRole)}，上报到这里的隐患无人主责。` +
      (coverage
        ? `<a href="/api/v1/grids/check?root=${encodeURIComponent(g.code)}" target="_blank" rel="noopener" data-gm="coverage-link">查看覆盖检查</a>`
        : '<span class="gm-muted">街道在覆盖检查中可见此缺口。</span>') +
      '</div>'
    : '';
  const leaderCard = leader
    ? `<div class="pp-leader-card" data-gm="leader">` +
      `<span class="gm-level">${esc(leader.role_name)}</span> <b data-gm="leader-name">${esc(leader.person_name)}</b>` +
      `${lp.party_member ? ' <span class="gm-tag gm-tag-red">党员</span>' : ''}` +
      `<div>${phones(lp)}</div><div class="gm-muted">自 ${esc(fmtDate(leader.valid_from))} 任职` +
      `${leader.started_by ? `（${esc(leader.started_by.by)}登记）` : ''}</div></div>`
    : `<p class="gm-muted">暂无${esc(leadRole)}</p>`;
  const current = data.current.map((a) => rowHtml(a, 'current'));
  const future = data.future.map((a) => rowHtml(a, 'future'));
  const past = data.past.map((a) => rowHtml(a, 'past'));
  return (
    `<header class="pp-head" data-grid-id="${g.id}">` +
    `<span class="gm-level" style="background:${esc(lv.color || '#546e7a')}">${esc(g.level_name || lv.name || '')}</span>` +
    `<h2 data-gm="grid-name">${esc(g.name)}</h2><span class="gm-code">${esc(g.code)}</span></header>` +
    `<nav class="gm-chain pp-chain">${chain}</nav>${gap}` +
    `<section><h3>${esc(leadRole)}</h3>${leaderCard}` +
    `<div class="gm-row"><button type="button" class="gm-btn gm-go" data-act="leader" data-gm="replace-leader">` +
    `<i class="fa-solid fa-user-pen"></i> ${leader ? '更换' : '指定'}${esc(leadRole)}</button>` +
    `<button type="button" class="gm-btn" data-act="add" data-gm="add-person"><i class="fa-solid fa-user-plus"></i> 添加人员</button></div></section>` +
    `<section><h3>在任人员 <span class="gm-count">${current.length}</span></h3>` +
    table(current, ['职务', '姓名', '电话', '任职时间', ''], '暂无在任人员') +
    '</section>' +
    (future.length ? `<section><h3>已安排</h3>${table(future, ['职务', '姓名', '电话', '任职时间', ''], '')}</section>` : '') +
    `<section><h3>历史</h3>${table(past, ['职务', '姓名', '任职时间', '结束（经办人：原因）'], '暂无历史记录')}</section>`
  );
}

/** A person's record as HTML: phones, 党员, notes, account and every role (newest first). */
export function personHtml(p) {
  const rows = p.assignments.map(
    (a) =>
      `<tr class="pp-${a.state}"><td>${esc(a.grid.name)}<div class="gm-code">${esc(a.grid.code)}</div></td>` +
      `<td>${esc(a.role_name)}${a.is_primary ? ' <span class="gm-tag">主责</span>' : ''}</td>` +
      `<td>${esc(fmtDate(a.valid_from))} 至 ${a.valid_to ? esc(fmtDate(a.valid_to)) : '今'}</td>` +
      `<td>${who(a.state === 'past' ? a.ended_by : a.started_by)}</td></tr>`
  );
  return (
    `<div class="pp-person" data-person-id="${p.id}">` +
    `<p><b data-gm="person-record-name">${esc(p.name)}</b>${p.party_member ? ' <span class="gm-tag gm-tag-red">党员</span>' : ''}` +
    `${p.active ? '' : ' <span class="gm-tag">不在岗</span>'}</p>` +
    `<p>${phones(p)}</p>` +
    (p.notes ? `<p class="pp-notes">${esc(p.notes)}</p>` : '') +
    `<p class="gm-muted">档案所属：${p.grid ? esc(p.grid.name) : '—'}；账号：${p.account ? esc(p.account.username) : '无'}</p>` +
    `<h3>任职记录</h3>${table(rows, ['网格', '职务', '时间', '经办人：原因'], '暂无任职记录')}</div>`
  );
}
