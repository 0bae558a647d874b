import { describe, expect, it } from 'vitest';
import {
  cellColour, channelQuantity, deriveControl, edgeLiveness, eventSummary, exportUrl, formatAge, formatTime, groupChannels, isoAxisLabels, limitLines,
  makeServerClock, modulesFromLatest, newestFirst, resetVerdict, statusText, unpopulatedCells, seriesToColumns, textOn, STALE_MS,
} from '../src/model.js';

const T = 1_790_000_000_000_000_000;

describe('modulesFromLatest', () => {
  const latest = {
    t: T,
    values: {
      'BMU03_pdo3.Cell_5_Voltage': { t: T, v: 4.21, unit: 'V', module: 3 },
      'BMU03_pdo4.Cell_14_Voltage': { t: T - 500e6, v: 3.8, unit: 'V', module: 3 },
      'BMU03_pdo1.CMA_Voltage': { t: T, v: 53.2, unit: 'V', module: 3 },
      'BMU03_pdo2.SOC': { t: T, v: 51, unit: '%', module: 3 },
      'BMU03_pdo6.CMA_Temp7': { t: T, v: 25.5, unit: 'degC', module: 3 },
      'BMU01_pdo1.CMA_Current': { t: T - 3000e6, v: -12.3, unit: 'A', module: 1 },
      // grouped by the channel's module, not by its name
      'renamed.Cell_2_Voltage': { t: T, v: 3.7, unit: 'V', module: 1 },
      'board.temp1_c': { t: T, v: 22, unit: 'degC', module: 0 },
    },
  };
  it('groups the values by module number and puts each cell at its index', () => {
    const mods = modulesFromLatest(latest);
    expect(mods.map((m) => m.module)).toEqual([1, 3]);
    const m3 = mods[1];
    expect(m3.cells_v[4]).toBe(4.21);
    expect(m3.cells_v[13]).toBe(3.8);
    expect(m3.cells_v[0]).toBeNull();
    expect(m3.voltage_v).toBe(53.2);
    expect(m3.soc_pct).toBe(51);
    expect(m3.temps_c[6]).toBe(25.5);
    expect(mods[0].cells_v[1]).toBe(3.7);
  });
  it('gives each module the age of its newest value relative to the newest value of the edge', () => {
    const mods = modulesFromLatest(latest);
    expect(mods[1].age_ms).toBe(0);
    expect(mods[0].age_ms).toBe(0);  // its cell 2 is fresh
    const old = modulesFromLatest({ t: T, values: { x: { t: T - 3000e6, v: 1, module: 2 } } });
    expect(old[0].age_ms).toBeCloseTo(3000, 3);
  });
  it('returns no modules for an empty or missing answer', () => {
    expect(modulesFromLatest({ t: 0, values: {} })).toEqual([]);
    expect(modulesFromLatest(undefined)).toEqual([]);
  });
});

describe('cellColour', () => {
  it('is green at the nominal voltage, red at the dangerous limit and grey without a value', () => {
    expect(cellColour(3.7)).toBe('rgb(46,160,90)');
    expect(cellColour(4.2)).toBe('rgb(200,40,40)');
    expect(cellColour(4.5)).toBe('rgb(150,20,20)');
    expect(cellColour(null)).toBe('#d7dbe0');
    expect(cellColour(NaN)).toBe('#d7dbe0');
  });
  it('chooses readable text on light and dark fills', () => {
    expect(textOn('rgb(236,178,46)')).toBe('#111');
    expect(textOn('rgb(52,101,164)')).toBe('#fff');
  });
});

describe('formatAge', () => {
  it('scales from milliseconds to days', () => {
    expect(formatAge(42)).toBe('42 ms');
    expect(formatAge(3200)).toBe('3.2 s');
    expect(formatAge(125000)).toBe('2 min');
    expect(formatAge(3 * 3600e3 + 5 * 60e3)).toBe('3 h 5 min');
    expect(formatAge(5 * 86400e3)).toBe('5 d');
    expect(formatAge(null)).toBe('—');
  });
});

describe('deriveControl', () => {
  const ev = (t, kind, event) => ({ t, kind, event });
  it('follows the schedule, then the nudge, then the trip', () => {
    const events = [
      ev(1, 'schedule', { event: 'started' }),
      ev(2, 'schedule', { event: 'step', step: 0, cycle: 0, setpoint: 20, unit: 'A' }),
      ev(3, 'action', { action: 'inverter_nudge_discharge', setpoint_a: -5 }),
      ev(4, 'schedule', { event: 'step', step: 1, cycle: 0, setpoint: 40, unit: 'A' }),
    ];
    let c = deriveControl(events);
    expect(c.mode).toBe('nudge discharge');
    expect(c.setpoint).toBe(-5);
    expect(c.schedule).toMatchObject({ running: true, step: 1, setpoint: 40 });
    c = deriveControl([...events, ev(5, 'action', { action: 'inverter_off' }), ev(6, 'schedule', { event: 'stopped', why: 'safe' })]);
    expect(c.mode).toBe('off');
    expect(c.schedule.running).toBe(false);
    expect(c.schedule.why).toBe('safe');
  });
  it('counts failed inverter link events', () => {
    const c = deriveControl([
      ev(2, 'link', { link: 'inverter', event: 'command_failed', message: 'timeout' }),
      ev(1, 'link', { link: 'inverter', event: 'started' }),
      ev(3, 'link', { link: 'board', up: false }),
    ]);
    expect(c.link_events).toBe(2);
    expect(c.link_failures).toBe(1);
    expect(c.link.event).toBe('command_failed');
  });
});

describe('eventSummary', () => {
  it('words a state change with its reason', () => {
    const s = eventSummary({ t: 1, kind: 'state', event: { from: 'warning', to: 'safe', reason: { text: 'dangerous limit_high x 4.21 >= 4.2' } } });
    expect(s).toBe('warning → safe (dangerous limit_high x 4.21 >= 4.2)');
  });
  it('falls back to the JSON of an unknown kind', () => {
    expect(eventSummary({ t: 1, kind: 'new', event: { t: 1, kind: 'new', a: 1 } })).toBe('{"a":1}');
  });
});

describe('seriesToColumns', () => {
  it('merges raw points and buckets on one time axis in seconds with nulls for gaps', () => {
    const cols = seriesToColumns([
      { channel: 'a', downsampled: false, points: [[1e9, 1], [2e9, 2]] },
      { channel: 'b', downsampled: true, bucket_ns: 1e9, buckets: [[2e9, 0, 10, 5, 3], [3e9, 0, 0, 0, 0]] },
    ], { bands: true });
    expect(cols[0]).toEqual([1, 2]);
    expect(cols[1]).toEqual([1, 2]);
    expect(cols[4]).toEqual([null, 5]);
    expect(cols[5]).toEqual([null, 0]);
    expect(cols[6]).toEqual([null, 10]);
  });
});

describe('groupChannels and exportUrl', () => {
  it('lists modules in numeric order before the devices', () => {
    const groups = groupChannels([{ name: 'board.temp1_c', module: 0 }, { name: 'x', module: 10 }, { name: 'y', module: 2 }]);
    expect(groups.map(([g]) => g)).toEqual(['Module 2', 'Module 10', 'board']);
  });
  it('writes integer nanoseconds into the export link', () => {
    expect(exportUrl('rig 1', 1.7e18, 1.7e18 + 3.6e12, 'csv', 1))
      .toBe('/api/v1/edges/rig%201/export?from=1700000000000000000&to=1700003600000000000&format=csv&interval_s=1');
  });
  it('asks for converted board values and extra columns only when chosen', () => {
    expect(exportUrl('r', 1, 2, 'csv', 1, { boardConverted: true, extraColumns: true })).toBe('/api/v1/edges/r/export?from=1&to=2&format=csv&interval_s=1&board=converted&extra=1');
    expect(exportUrl('r', 1, 2, 'jsonl', 1, { boardConverted: true })).toBe('/api/v1/edges/r/export?from=1&to=2&format=jsonl');
  });
});

describe('newestFirst', () => {
  it('puts the later of two events with the same time first', () => {
    const order = newestFirst([{ t: 1, n: 'a' }, { t: 2, n: 'b' }, { t: 2, n: 'c' }]).map((e) => e.n);
    expect(order).toEqual(['c', 'b', 'a']);
  });
});

describe('unpopulatedCells', () => {
  const mod = (cells) => ({ cells_v: cells });
  it('finds slots that read the same low value in every module', () => {
    const empty = unpopulatedCells([mod([3.75, 3.76, 2.2, 2.2]), mod([3.74, 3.75, 2.2, 2.2])]);
    expect([...empty]).toEqual([2, 3]);
  });
  it('keeps a single low cell visible', () => {
    expect(unpopulatedCells([mod([3.75, 2.2]), mod([3.74, 3.7])]).size).toBe(0);
    expect(unpopulatedCells([mod([3.75, 2.2])]).size).toBe(0);
  });
});

describe('freshness against the server clock', () => {
  it('keeps the offset between the server and the browser', () => {
    let local = 1_000_000;  // ms
    const clock = makeServerClock(() => local);
    expect(clock.known()).toBe(false);
    clock.update((local + 60_000) * 1e6);  // the server is a minute ahead
    expect(clock.offsetMs()).toBe(60_000);
    local += 1500;
    expect(clock.nowNs()).toBe((1_000_000 + 60_000 + 1500) * 1e6);
  });
  it('says an edge is offline when the link is down or nothing arrived for STALE_MS', () => {
    const now = T;
    expect(edgeLiveness({ connected: true, last_value_ns: now - 400e6 }, now).status).toBe('online');
    expect(edgeLiveness({ connected: true, last_value_ns: now - (STALE_MS + 1) * 1e6 }, now).status).toBe('silent');
    const off = edgeLiveness({ connected: false, last_value_ns: now - 3000e6 }, now);
    expect(off.status).toBe('offline');
    expect(off.age_ms).toBe(3000);
    expect(STALE_MS).toBeLessThan(2000);  // greyed within 2 s of going silent
  });
  it('greys modules by their age against the given now (the server clock), not the newest value', () => {
    const latest = { t: T, values: { 'BMU01_pdo1.CMA_Voltage': { t: T, v: 50, module: 1 } } };
    expect(modulesFromLatest(latest, T + 2500e6)[0].age_ms).toBe(2500);
  });
});

describe('resetVerdict', () => {
  const cause = { level: 'dangerous', text: 'cell 5 of module 3: 4.40 V >= 4.20 V (dangerous)' };
  it('says a reset would be refused while a dangerous cause remains', () => {
    const v = resetVerdict({ state: 'safe', reset_possible: false, active_causes: [cause, { level: 'warning' }] });
    expect(v.accepted).toBe(false);
    expect(v.causes).toEqual([cause]);
    expect(v.text).toMatch(/refused/);
  });
  it('says a reset would be accepted once the causes cleared', () => {
    expect(resetVerdict({ state: 'safe', reset_possible: true, active_causes: [] }).accepted).toBe(true);
  });
  it('does not guess for an edge that does not report it, and says nothing outside SAFE', () => {
    expect(resetVerdict({ state: 'safe', reset_possible: null }).accepted).toBeNull();
    expect(resetVerdict({ state: 'normal', reset_possible: false }).text).toBe('');
  });
});

describe('limits, status and axis labels', () => {
  const limits = { cell_voltage: { warning_high: 4.1, dangerous_high: 4.2, warning_low: 2.8, dangerous_low: 2.7 },
                   module_max_temperature: { warning_high: 30, dangerous_high: 50 } };
  it('maps channels to their configured limits', () => {
    expect(limitLines(limits, 'BMU03_pdo3.Cell_5_Voltage').map((l) => l.value).sort()).toEqual([2.7, 2.8, 4.1, 4.2]);
    expect(limitLines(limits, 'BMU03_pdo1.CMA_Max_Temp')).toEqual([
      { level: 'warning', side: 'high', value: 30 }, { level: 'dangerous', side: 'high', value: 50 }]);
    expect(limitLines(limits, 'board.pressure')).toEqual([]);
    expect(limitLines(null, 'BMU03_pdo3.Cell_5_Voltage')).toEqual([]);
    expect(channelQuantity('inverter.battery_voltage_v')).toBe('inverter_battery_voltage');
  });
  it('shows CMA_Status as its raw code, since no source gives a meaning, or from a table when given', () => {
    expect(statusText(67).text).toBe('0x0043');
    expect(statusText(67).title).toMatch(/neither the DBC/);
    expect(statusText(3, { 3: 'ready' }).text).toBe('ready');
    expect(statusText(null).text).toBe('—');
  });
  it('labels the time axis in 24-hour ISO form', () => {
    const base = new Date(2026, 11, 7, 15, 4, 5).getTime() / 1000;  // 15:04:05 local
    expect(isoAxisLabels([base, base + 60], 300)).toEqual(['15:04:05\n2026-12-07', '15:05:05']);
    expect(isoAxisLabels([base], 3600)).toEqual(['15:04\n2026-12-07']);
    expect(isoAxisLabels([base, base + 86400], 3 * 86400)).toEqual(['15:04\n2026-12-07', '15:04\n2026-12-08']);
    expect(formatTime(base * 1e9)).toBe('2026-12-07 15:04:05');
  });
});
