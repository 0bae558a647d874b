import { describe, expect, it } from 'vitest';
import {
  cellColour, deriveControl, eventSummary, exportUrl, formatAge, groupChannels, modulesFromLatest, newestFirst, unpopulatedCells, seriesToColumns,
  textOn,
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
