/**
 * Hand-rolled SVG charts (no plotting dependency): line and scatter charts with linear or log
 * axes, grid lines, a title and a legend. Output is a standalone SVG document.
 */

export interface Tick {
  readonly value: number
  readonly label: string
}

export interface Axis {
  readonly label: string
  readonly scale: 'linear' | 'log'
  /** Explicit ticks; otherwise decades (log) or 1-2-5 steps (linear). */
  readonly ticks?: readonly Tick[]
  /** Forces the axis to include this value (e.g. 0 on a linear axis). */
  readonly include?: number
}

export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
}

export interface ChartOptions {
  readonly title: string
  readonly subtitle?: string
  readonly x: Axis
  readonly y: Axis
  readonly series: readonly Series[]
  /** Join the points with lines (default) or only mark them. */
  readonly lines?: boolean
  readonly width?: number
  readonly height?: number
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f']

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** 1234 → "1.2k", 0.0123 → "0.012". */
export function formatNumber(v: number): string {
  const a = Math.abs(v)
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`
  if (a === 0) return '0'
  return `${+v.toPrecision(3)}`
}

interface Scale {
  readonly min: number
  readonly max: number
  map(v: number): number
  readonly ticks: readonly Tick[]
}

function niceStep(span: number, target: number): number {
  const raw = span / target
  const mag = 10 ** Math.floor(Math.log10(raw))
  const f = raw / mag
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag
}

function makeScale(axis: Axis, values: readonly number[], from: number, to: number): Scale {
  const vs = values.filter((v) => Number.isFinite(v) && (axis.scale === 'linear' || v > 0))
  if (axis.include !== undefined) vs.push(axis.include)
  for (const t of axis.ticks ?? []) vs.push(t.value)
  let lo = vs.length ? Math.min(...vs) : 1
  let hi = vs.length ? Math.max(...vs) : 10
  if (axis.scale === 'log') {
    if (axis.ticks && axis.ticks.length > 1) {
      // Explicit ticks (writer counts): the axis spans them, with a margin, not whole decades.
      lo = lo / 1.4
      hi = hi * 1.4
    } else {
      lo = 10 ** Math.floor(Math.log10(lo))
      hi = 10 ** Math.ceil(Math.log10(hi))
    }
    if (hi <= lo) hi = lo * 10
    const ticks: Tick[] = []
    if (axis.ticks) ticks.push(...axis.ticks)
    else {
      const decades = Math.round(Math.log10(hi / lo))
      for (let d = lo; d <= hi * 1.0001; d *= 10) {
        ticks.push({ value: d, label: formatNumber(d) })
        if (decades <= 2 && d < hi) for (const m of [2, 5]) ticks.push({ value: d * m, label: formatNumber(d * m) })
      }
    }
    const l0 = Math.log10(lo)
    const l1 = Math.log10(hi)
    return { min: lo, max: hi, ticks, map: (v) => from + ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0)) * (to - from) }
  }
  if (hi === lo) hi = lo + 1
  const step = niceStep(hi - lo, 6)
  lo = Math.floor(lo / step) * step
  hi = Math.ceil(hi / step) * step
  const ticks: Tick[] = axis.ticks ? [...axis.ticks] : []
  if (!axis.ticks) for (let v = lo; v <= hi + step / 1000; v += step) ticks.push({ value: v, label: formatNumber(+v.toPrecision(12)) })
  return { min: lo, max: hi, ticks, map: (v) => from + ((v - lo) / (hi - lo)) * (to - from) }
}

/** A line (or scatter) chart as an SVG document. */
export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 760
  const height = o.height ?? 460
  const m = { left: 72, right: 200, top: o.subtitle ? 58 : 42, bottom: 56 }
  const x = makeScale(o.x, o.series.flatMap((s) => s.points.map((p) => p[0])), m.left, width - m.right)
  const y = makeScale(o.y, o.series.flatMap((s) => s.points.map((p) => p[1])), height - m.bottom, m.top)
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  out.push(`<text x="${width / 2 - m.right / 2 + m.left / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(o.title)}</text>`)
  if (o.subtitle) out.push(`<text x="${width / 2 - m.right / 2 + m.left / 2}" y="40" text-anchor="middle" fill="#555">${escapeXml(o.subtitle)}</text>`)
  // Grid and ticks.
  for (const t of x.ticks) {
    const px = x.map(t.value).toFixed(1)
    out.push(`<line x1="${px}" y1="${m.top}" x2="${px}" y2="${height - m.bottom}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${px}" y="${height - m.bottom + 16}" text-anchor="middle">${escapeXml(t.label)}</text>`)
  }
  for (const t of y.ticks) {
    const py = y.map(t.value).toFixed(1)
    out.push(`<line x1="${m.left}" y1="${py}" x2="${width - m.right}" y2="${py}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${m.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeXml(t.label)}</text>`)
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${width - m.left - m.right}" height="${height - m.top - m.bottom}" fill="none" stroke="#333"/>`)
  out.push(`<text x="${(m.left + width - m.right) / 2}" y="${height - 14}" text-anchor="middle">${escapeXml(o.x.label)}${o.x.scale === 'log' ? ' (log scale)' : ''}</text>`)
  out.push(`<text transform="translate(18 ${(m.top + height - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.y.label)}${o.y.scale === 'log' ? ' (log scale)' : ''}</text>`)
  // Series.
  for (const [i, s] of o.series.entries()) {
    const color = COLORS[i % COLORS.length]!
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (o.y.scale === 'linear' || p[1] > 0)).map((p) => [x.map(p[0]), y.map(p[1])] as const)
    if (o.lines !== false && pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ')}"/>`)
    if (o.lines === false || pts.length <= 12) for (const p of pts) out.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="3.5" fill="${color}"/>`)
    const ly = m.top + 8 + i * 20
    out.push(`<line x1="${width - m.right + 14}" y1="${ly}" x2="${width - m.right + 36}" y2="${ly}" stroke="${color}" stroke-width="3"/>`)
    out.push(`<text x="${width - m.right + 42}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`)
  }
  out.push('</svg>')
  return out.join('\n') + '\n'
}
