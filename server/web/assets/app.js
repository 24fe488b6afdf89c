/* global document, fetch, URL, URLSearchParams, FormData, setTimeout, clearTimeout -- browser globals */
// The demo page: pick an image and a budget; the server's selector picks the model (POST
// /v1/select as a dry run while the budget changes, POST /v1/classify once there is an image) and
// the chart shows the zoo (GET /models) with the chosen model highlighted.
import { drawParetoChart } from './chart.js'

const $ = (id) => document.getElementById(id)

const state = {
  models: [],
  cascades: [],
  file: null,
  chosen: undefined,
  feasible: new Set(),
  selectSeq: 0,
  classifySeq: 0,
}

const format = (v) => (v >= 100 ? v.toFixed(0) : String(+v.toPrecision(3)))

/** Slider position t in [0, 1] ↔ value; log scale when the range spans more than a decade. */
function scale(lo, hi) {
  if (lo > 0 && hi / lo > 10) {
    return { value: (t) => lo * (hi / lo) ** t, position: (v) => Math.log(v / lo) / Math.log(hi / lo) }
  }
  return { value: (t) => lo + (hi - lo) * t, position: (v) => (v - lo) / (hi - lo) }
}

const controls = {
  maxMflops: {
    use: $('use-mflops'),
    range: $('mflops'),
    output: $('mflops-value'),
    text: (v) => `${format(v)} MFLOPs`,
  },
  maxLatencyMs: {
    use: $('use-latency'),
    range: $('latency'),
    output: $('latency-value'),
    text: (v) => `${format(v)} ms`,
  },
  minTop1: {
    use: $('use-top1'),
    range: $('top1'),
    output: $('top1-value'),
    text: (v) => `${(v * 100).toFixed(1)}%`,
  },
}

function configureSliders(models) {
  const mflops = models.map((m) => m.mflops)
  const latencies = models.filter((m) => m.latencyMs).map((m) => m.latencyMs.p50)
  const top1 = models.map((m) => m.top1)
  controls.maxMflops.scale = scale(Math.min(...mflops) * 0.8, Math.max(...mflops) * 1.25)
  controls.maxMflops.initial = 1
  if (latencies.length > 0) {
    controls.maxLatencyMs.scale = scale(Math.min(...latencies) * 0.8, Math.max(...latencies) * 2)
    controls.maxLatencyMs.initial = 1
  } else {
    controls.maxLatencyMs.use.disabled = true
    controls.maxLatencyMs.output.textContent = 'not measured'
  }
  const lo = Math.max(0, Math.floor((Math.min(...top1) - 0.05) * 100) / 100)
  const hi = Math.min(1, Math.ceil((Math.max(...top1) + 0.01) * 100) / 100)
  controls.minTop1.scale = scale(lo, hi)
  controls.minTop1.initial = 0
  for (const control of Object.values(controls)) {
    if (!control.scale) continue
    control.range.value = String(control.initial)
    showValue(control)
  }
}

function controlValue(control) {
  return control.scale.value(Number(control.range.value))
}

function showValue(control) {
  if (control.scale) control.output.textContent = control.text(controlValue(control))
}

function budget() {
  const fields = {}
  for (const [name, control] of Object.entries(controls)) {
    if (control.use.checked && control.scale) fields[name] = +controlValue(control).toPrecision(3)
  }
  if ($('smallest').checked) fields.onInfeasible = 'smallest'
  return fields
}

function redraw() {
  const fields = budget()
  drawParetoChart($('chart'), state.models, {
    cascades: state.cascades,
    chosen: state.chosen,
    feasible: state.feasible,
    budget: fields,
  })
}

async function readJson(response) {
  const body = await response.json().catch(() => ({ message: `HTTP ${response.status}` }))
  if (!response.ok) {
    const error = new Error(body.message ?? `HTTP ${response.status}`)
    error.code = body.code
    throw error
  }
  return body
}

/** Dry run: which model this budget gets, shown before any image is sent. */
async function updateSelection() {
  const seq = ++state.selectSeq
  try {
    const body = await readJson(
      await fetch('/v1/select', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(budget()),
      }),
    )
    if (seq !== state.selectSeq) return
    state.feasible = new Set(body.candidates.filter((c) => c.accepted).map((c) => c.name))
    state.chosen = body.model?.name
    $('selection').textContent = body.error
      ? body.error.message
      : `Selected: ${body.model.name}. ${body.explanation}.`
    $('selection').classList.toggle('infeasible', Boolean(body.error))
  } catch (error) {
    if (seq !== state.selectSeq) return
    $('selection').textContent = error.message
  }
  redraw()
}

function renderPrediction(body) {
  const result = $('result')
  result.replaceChildren()
  const served = document.createElement('div')
  served.className = 'served'
  const name = document.createElement('span')
  name.id = 'served-model'
  name.className = 'model'
  name.textContent = body.model.name
  const badge = document.createElement('span')
  badge.className = `badge ${body.budget.met ? 'met' : 'missed'}`
  badge.textContent = body.budget.met ? 'budget met' : 'budget missed'
  served.append(name, badge)

  const facts = document.createElement('p')
  facts.className = 'facts'
  facts.textContent = `${format(body.model.mflops)} MFLOPs · top-1 ${(body.model.top1 * 100).toFixed(1)}% · ${body.model.executionProvider ?? '?'}`

  const explanation = document.createElement('p')
  explanation.className = 'explanation'
  explanation.textContent = `${body.selection.explanation}.`

  const list = document.createElement('ol')
  list.id = 'predictions'
  list.className = 'predictions'
  for (const p of body.predictions) {
    const item = document.createElement('li')
    const label = document.createElement('span')
    label.className = 'label'
    label.textContent = p.label
    const bar = document.createElement('span')
    bar.className = 'bar'
    const fill = document.createElement('span')
    fill.style.width = `${(p.score * 100).toFixed(1)}%`
    bar.append(fill)
    const score = document.createElement('span')
    score.className = 'score'
    score.textContent = `${(p.score * 100).toFixed(1)}%`
    item.append(label, bar, score)
    list.append(item)
  }

  const t = body.timing
  const timing = document.createElement('p')
  timing.className = 'timing'
  timing.textContent = `decode ${t.decodeMs.toFixed(1)} ms · queue ${t.queueMs.toFixed(1)} ms · inference ${t.inferenceMs.toFixed(2)} ms · total ${t.totalMs.toFixed(1)} ms`
  result.append(served, facts, explanation, list, timing)
  if (body.cascade) result.append(cascadeStages(body.cascade))
}

// Which stages of the cascade ran for this image and where it exited.
function cascadeStages(cascade) {
  const box = document.createElement('div')
  box.id = 'cascade-stages'
  box.className = 'cascade'
  const title = document.createElement('p')
  title.textContent = `Cascade ${cascade.name}: ${cascade.stages.length} stage(s) ran, exited at stage ${cascade.exitStage + 1} (${format(cascade.mflops)} MFLOPs; expected ${format(cascade.expectedMflops)}, worst ${format(cascade.worstMflops)})`
  const list = document.createElement('ol')
  for (const stage of cascade.stages) {
    const item = document.createElement('li')
    item.className = stage.answered ? 'answered' : 'escalated'
    const rule =
      stage.threshold === null
        ? 'last stage: answers'
        : `${stage.answered ? '≥' : '<'} threshold ${(stage.threshold * 100).toFixed(1)}%`
    item.textContent = `${stage.model}: confidence ${(stage.confidence * 100).toFixed(1)}% (${rule}) · ${stage.inferenceMs.toFixed(2)} ms`
    list.append(item)
  }
  box.append(title, list)
  return box
}

function renderError(error) {
  const p = document.createElement('p')
  p.className = 'error'
  p.textContent = error.code ? `${error.code}: ${error.message}` : error.message
  $('result').replaceChildren(p)
}

async function classify() {
  if (!state.file) return
  const seq = ++state.classifySeq
  $('result').setAttribute('aria-busy', 'true')
  const query = new URLSearchParams(Object.entries(budget()).map(([k, v]) => [k, String(v)]))
  const form = new FormData()
  form.append('image', state.file, state.file.name || 'image')
  try {
    const body = await readJson(await fetch(`/v1/classify?${query}`, { method: 'POST', body: form }))
    if (seq !== state.classifySeq) return
    renderPrediction(body)
    state.chosen = body.cascade ? body.cascade.name : body.model.name
    redraw()
  } catch (error) {
    if (seq === state.classifySeq) renderError(error)
  } finally {
    if (seq === state.classifySeq) $('result').removeAttribute('aria-busy')
  }
}

let pending
function budgetChanged() {
  for (const control of Object.values(controls)) {
    control.range.disabled = !control.use.checked
    showValue(control)
  }
  clearTimeout(pending)
  pending = setTimeout(() => {
    void updateSelection().then(classify)
  }, 150)
}

function useFile(file) {
  if (!file) return
  state.file = file
  const preview = $('preview')
  if (preview.src) URL.revokeObjectURL(preview.src)
  preview.src = URL.createObjectURL(file)
  preview.hidden = false
  $('drop-text').textContent = file.name || 'image'
  void classify()
}

function wire() {
  for (const control of Object.values(controls)) {
    control.use.addEventListener('change', budgetChanged)
    control.range.addEventListener('input', budgetChanged)
  }
  $('smallest').addEventListener('change', budgetChanged)
  $('file').addEventListener('change', (event) => useFile(event.target.files[0]))
  const drop = $('drop')
  drop.addEventListener('dragover', (event) => {
    event.preventDefault()
    drop.classList.add('over')
  })
  drop.addEventListener('dragleave', () => drop.classList.remove('over'))
  drop.addEventListener('drop', (event) => {
    event.preventDefault()
    drop.classList.remove('over')
    useFile(event.dataTransfer.files[0])
  })
}

async function start() {
  wire()
  try {
    const { models, cascades = [] } = await readJson(await fetch('/models'))
    state.models = models
    state.cascades = cascades
    configureSliders(models)
    document.body.dataset.ready = 'true'
    await updateSelection()
  } catch (error) {
    $('selection').textContent = `Cannot load the zoo: ${error.message}`
  }
}

void start()
