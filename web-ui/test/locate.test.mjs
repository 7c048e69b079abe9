// node --test web-ui/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { locate, parsePath, lineFromMessage } from '../assets/js/locate.js';

const json = `{
  "name": "visits",
  "batch_interval": "1s",
  "source": {
    "generator": { "format": "visits", "rate_per_s": 5000000 }
  },
  "stages": [
    { "map": { "udf": "examples@latest", "function": "parse_vist", "value": "i64" } },
    {
      "window": {
        "length": "60s",
        "slide": "1500ms"
      }
    }
  ],
  "sink": { "print": { "records": 10 } }
}`;

const yaml = `# a comment
name: visits
batch_interval: 1s
source:
  generator:
    format: visits
    rate_per_s: 5000000
stages:
  - map: { udf: examples@latest, function: parse_vist, value: i64 }
  - window:
      length: 60s
      slide: 1500ms
sink:
  print: { records: 10 }
`;

const compact = `name: x
stages:
- filter:
    udf: examples@1
    function: is_error
- reduce_by_key:
    builtin: sum
sink: {print: {}}
`;

test('parsePath', () => {
  assert.deepEqual(parsePath('stages[2].window.slide'), ['stages', 2, 'window', 'slide']);
  assert.deepEqual(parsePath(''), []);
  assert.deepEqual(parsePath('source.generator.rate_per_s'), ['source', 'generator', 'rate_per_s']);
});

test('JSON paths', () => {
  assert.deepEqual(locate(json, 'stages[1].window.slide', 'json'), { line: 12, exact: true });
  assert.deepEqual(locate(json, 'stages[0].map.function', 'json'), { line: 8, exact: true });
  assert.deepEqual(locate(json, 'source.generator.rate_per_s', 'json'), { line: 5, exact: true });
  assert.deepEqual(locate(json, 'sink', 'json'), { line: 16, exact: true });
  assert.deepEqual(locate(json, 'stages[1]', 'json'), { line: 9, exact: true });
  // a missing field: the closest enclosing one
  assert.deepEqual(locate(json, 'stages[1].window.nope', 'json'), { line: 10, exact: false });
  assert.deepEqual(locate(json, 'nothing.here', 'json'), { line: 1, exact: false });
  assert.deepEqual(locate(json, '', 'json'), { line: 1, exact: false });
});

test('JSON: keys with the same name elsewhere and broken text', () => {
  const t = '{\n "a": {"slide": 1},\n "b": {\n  "slide": 2\n }\n}';
  assert.equal(locate(t, 'b.slide', 'json').line, 4);
  assert.equal(locate(t, 'a.slide', 'json').line, 2);
  const broken = '{\n "stages": [\n  {"map": {}},\n  {"window": {"slide": "1s" ,,\n';
  assert.deepEqual(locate(broken, 'stages[1].window.slide', 'json'), { line: 4, exact: true });
  assert.deepEqual(locate(broken, 'stages[1].window.length', 'json'), { line: 4, exact: false });
});

test('YAML paths', () => {
  assert.deepEqual(locate(yaml, 'stages[1].window.slide', 'yaml'), { line: 12, exact: true });
  assert.deepEqual(locate(yaml, 'stages[0].map.function', 'yaml'), { line: 9, exact: false });
  assert.deepEqual(locate(yaml, 'source.generator.rate_per_s', 'yaml'), { line: 7, exact: true });
  assert.deepEqual(locate(yaml, 'batch_interval', 'yaml'), { line: 3, exact: true });
  assert.deepEqual(locate(yaml, 'sink.print.records', 'yaml'), { line: 14, exact: false });
  assert.deepEqual(locate(yaml, 'nope', 'yaml'), { line: 1, exact: false });
});

test('YAML compact sequences', () => {
  assert.deepEqual(locate(compact, 'stages[1].reduce_by_key.builtin', 'yaml'), { line: 7, exact: true });
  assert.deepEqual(locate(compact, 'stages[0].filter.function', 'yaml'), { line: 5, exact: true });
  assert.equal(locate(compact, 'sink', 'yaml').line, 8);
});

test('parse error lines', () => {
  assert.equal(lineFromMessage('not valid JSON: expected `,` or `}` at line 2 column 22'), 2);
  assert.equal(lineFromMessage('whatever'), null);
});
