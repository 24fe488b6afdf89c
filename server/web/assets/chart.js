/* global document -- browser global */
// The zoo's Pareto chart (top-1 vs MFLOPs) as an inline SVG built with DOM calls.
// drawParetoChart(container, models, { chosen, feasible, budget }) redraws it from scratch.

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 520
const HEIGHT = 320
const MARGIN = { top: 16, right: 20, bottom: 44, left: 56 }

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG, name)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value))
  if (text !== undefined) node.textContent = text
  return node
}

/** Models no other model beats on both axes (fewer MFLOPs and higher top-1), cheapest first. */
export function paretoFrontier(models) {
  const sorted = [...models].sort((a, b) => a.mflops - b.mflops || b.top1 - a.top1)
  const frontier = []
  let best = -Infinity
  for (const model of sorted) {
    if (model.top1 > best) {
      frontier.push(model)
      best = model.top1
    }
  }
  return frontier
}

function niceStep(span, count) {
  const raw = span / count
  const power = 10 ** Math.floor(Math.log10(raw))
  const scaled = raw / power
  return (scaled < 1.5 ? 1 : scaled < 3 ? 2 : scaled < 7 ? 5 : 10) * power
}

function linearTicks(lo, hi, count) {
  const step = niceStep(hi - lo || 1, count)
  const ticks = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(+v.toPrecision(12))
  return ticks
}

function logTicks(lo, hi) {
  const ticks = []
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e
      if (v >= lo && v <= hi) ticks.push(v)
    }
  }
  return ticks
}

function formatNumber(v) {
  return v >= 100 ? v.toFixed(0) : v >= 1 ? String(+v.toPrecision(3)) : String(+v.toPrecision(2))
}

/** x scale over MFLOPs: logarithmic when the zoo spans more than a decade. */
function xScale(models) {
  const values = models.map((m) => m.mflops)
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const plot = WIDTH - MARGIN.left - MARGIN.right
  if (hi / lo > 10) {
    const a = Math.log10(lo) - 0.1
    const b = Math.log10(hi) + 0.1
    return {
      at: (v) => MARGIN.left + ((Math.log10(Math.max(v, 1e-12)) - a) / (b - a)) * plot,
      ticks: logTicks(10 ** a, 10 ** b),
      log: true,
    }
  }
  const pad = (hi - lo) * 0.08 || lo * 0.1 || 1
  const a = Math.max(0, lo - pad)
  const b = hi + pad
  return { at: (v) => MARGIN.left + ((v - a) / (b - a)) * plot, ticks: linearTicks(a, b, 5), log: false }
}

function yScale(models) {
  const values = models.map((m) => m.top1)
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const pad = (hi - lo) * 0.12 || 0.02
  const a = Math.max(0, lo - pad)
  const b = Math.min(1, hi + pad)
  const plot = HEIGHT - MARGIN.top - MARGIN.bottom
  return { at: (v) => MARGIN.top + (1 - (v - a) / (b - a)) * plot, ticks: linearTicks(a, b, 5), lo: a, hi: b }
}

export function drawParetoChart(
  container,
  models,
  { chosen, feasible = new Set(), budget = {}, cascades = [] } = {},
) {
  container.replaceChildren()
  if (models.length === 0) {
    container.textContent = 'The zoo has no models.'
    return
  }
  const svg = el('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: 'pareto', 'data-models': models.length })
  // Cascades sit at their expected MFLOPs; the scales cover both kinds.
  const cascadePoints = cascades.map((c) => ({ ...c, mflops: c.expectedMflops }))
  const x = xScale([...models, ...cascadePoints])
  const y = yScale([...models, ...cascadePoints])
  const left = MARGIN.left
  const right = WIDTH - MARGIN.right
  const top = MARGIN.top
  const bottom = HEIGHT - MARGIN.bottom

  // Budget region: cheaper than maxMflops and at least minTop1.
  if (budget.maxMflops !== undefined || budget.minTop1 !== undefined) {
    const x1 =
      budget.maxMflops !== undefined ? Math.min(right, Math.max(left, x.at(budget.maxMflops))) : right
    const y1 = budget.minTop1 !== undefined ? Math.min(bottom, Math.max(top, y.at(budget.minTop1))) : bottom
    svg.append(el('rect', { class: 'budget-region', x: left, y: top, width: x1 - left, height: y1 - top }))
  }

  for (const tick of x.ticks) {
    const px = x.at(tick)
    if (px < left - 0.5 || px > right + 0.5) continue
    svg.append(el('line', { class: 'grid', x1: px, x2: px, y1: top, y2: bottom }))
    svg.append(
      el('text', { class: 'tick', x: px, y: bottom + 16, 'text-anchor': 'middle' }, formatNumber(tick)),
    )
  }
  for (const tick of y.ticks) {
    const py = y.at(tick)
    if (py < top - 0.5 || py > bottom + 0.5) continue
    svg.append(el('line', { class: 'grid', x1: left, x2: right, y1: py, y2: py }))
    svg.append(
      el(
        'text',
        { class: 'tick', x: left - 6, y: py + 4, 'text-anchor': 'end' },
        `${+(tick * 100).toPrecision(4)}%`,
      ),
    )
  }
  svg.append(el('line', { class: 'axis', x1: left, x2: right, y1: bottom, y2: bottom }))
  svg.append(el('line', { class: 'axis', x1: left, x2: left, y1: top, y2: bottom }))
  svg.append(
    el(
      'text',
      { class: 'label', x: (left + right) / 2, y: HEIGHT - 8, 'text-anchor': 'middle' },
      `MFLOPs${x.log ? ' (log scale)' : ''}`,
    ),
  )
  svg.append(
    el(
      'text',
      {
        class: 'label',
        x: 14,
        y: (top + bottom) / 2,
        'text-anchor': 'middle',
        transform: `rotate(-90 14 ${(top + bottom) / 2})`,
      },
      'top-1',
    ),
  )

  const frontier = paretoFrontier(models)
  if (frontier.length > 1) {
    const points = frontier.map((m) => `${x.at(m.mflops).toFixed(1)},${y.at(m.top1).toFixed(1)}`).join(' ')
    svg.append(el('polyline', { class: 'frontier', points }))
  }

  for (const model of models) {
    const classes = ['point']
    if (!model.ready) classes.push('not-ready')
    if (feasible.has(model.name)) classes.push('feasible')
    if (model.name === chosen) classes.push('chosen')
    const group = el('g', { class: classes.join(' '), 'data-model': model.name })
    const cx = x.at(model.mflops)
    const cy = y.at(model.top1)
    group.append(el('circle', { cx, cy, r: model.name === chosen ? 8 : 5 }))
    const latency = model.latencyMs ? `, p50 ${model.latencyMs.p50.toFixed(2)} ms` : ''
    group.append(
      el(
        'title',
        {},
        `${model.name}: ${formatNumber(model.mflops)} MFLOPs, top-1 ${(model.top1 * 100).toFixed(1)}%${latency}${model.ready ? '' : ' (not ready)'}`,
      ),
    )
    if (model.name === chosen) {
      const anchor = cx > (left + right) / 2 ? 'end' : 'start'
      const dx = anchor === 'end' ? -12 : 12
      group.append(
        el('text', { class: 'chosen-label', x: cx + dx, y: cy - 10, 'text-anchor': anchor }, model.name),
      )
    }
    svg.append(group)
  }
  drawCascades(svg, cascadePoints, x, y, chosen)
  container.append(svg)
}

// The cascades as a second frontier: diamonds at (expected MFLOPs, top-1).
function drawCascades(svg, cascades, x, y, chosen) {
  const frontier = paretoFrontier(cascades)
  if (frontier.length > 1) {
    const points = frontier.map((c) => `${x.at(c.mflops).toFixed(1)},${y.at(c.top1).toFixed(1)}`).join(' ')
    svg.append(el('polyline', { class: 'frontier cascade-frontier', points }))
  }
  for (const cascade of cascades) {
    const cx = x.at(cascade.mflops)
    const cy = y.at(cascade.top1)
    const r = cascade.name === chosen ? 9 : 6
    const classes = ['point', 'cascade-point']
    if (!cascade.ready) classes.push('not-ready')
    if (cascade.name === chosen) classes.push('chosen')
    const group = el('g', { class: classes.join(' '), 'data-cascade': cascade.name })
    group.append(el('polygon', { points: `${cx},${cy - r} ${cx + r},${cy} ${cx},${cy + r} ${cx - r},${cy}` }))
    group.append(
      el(
        'title',
        {},
        `${cascade.name} (cascade ${cascade.stages.join(' → ')}): expected ${formatNumber(cascade.mflops)} MFLOPs (worst ${formatNumber(cascade.worstMflops)}), top-1 ${(cascade.top1 * 100).toFixed(1)}%`,
      ),
    )
    svg.append(group)
  }
}
