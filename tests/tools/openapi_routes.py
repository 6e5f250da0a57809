#!/usr/bin/python3
"""openapi_routes: prints `METHOD PATH STATUS` for every answer an OpenAPI
document declares (paths.*.<method>.responses, and `* * STATUS` for the
root extension x-payq-unmatched.responses), sorted, in the format of
`payq-producer routes`.

    openapi_routes.py FILE [--parser tiny|yaml]

tiny (the default) is a line-based reader for the subset schemas/openapi.yaml
is written in (block-style paths; an operation may be one flow-style line);
it needs nothing but python3. yaml uses PyYAML when installed (it may not
be: scripts/setup does not install it); the test runs both when it can so
the tiny reader is itself checked against a real YAML parser."""
import re
import sys

METHODS = ('get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace')


def key_of(text):
    k = text.split(':', 1)[0].strip()
    return k.strip('\'"')


def status_keys(text):
    return re.findall(r'[\'"]?(\d{3})[\'"]?\s*:', text)


def tiny(path):
    out = set()
    section = cur_path = cur_method = None
    in_responses = False
    for raw in open(path, encoding='utf-8'):
        line = raw.rstrip('\n')
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        indent = len(line) - len(line.lstrip(' '))
        if indent == 0:
            section = key_of(stripped)
            cur_path = cur_method = None
            in_responses = False
            continue
        if section == 'paths':
            if indent == 2:
                cur_path, cur_method = key_of(stripped), None
            elif indent == 4:
                k = key_of(stripped)
                cur_method = k if k in METHODS else None
                in_responses = False
                rest = stripped.split(':', 1)[1].strip()
                if cur_method and rest.startswith('{'):
                    inner = rest.split('responses:', 1)[1] if 'responses:' in rest else ''
                    for code in status_keys(inner):
                        out.add((cur_method.upper(), cur_path, code))
            elif indent == 6 and cur_method:
                in_responses = key_of(stripped) == 'responses'
            elif indent == 8 and cur_method and in_responses:
                m = re.match(r'[\'"]?(\d{3})[\'"]?\s*:', stripped)
                if m:
                    out.add((cur_method.upper(), cur_path, m.group(1)))
        elif section == 'x-payq-unmatched':
            if indent == 2:
                in_responses = key_of(stripped) == 'responses'
            elif indent == 4 and in_responses:
                m = re.match(r'[\'"]?(\d{3})[\'"]?\s*:', stripped)
                if m:
                    out.add(('*', '*', m.group(1)))
    return out


def with_yaml(path):
    import yaml  # only when asked for
    doc = yaml.safe_load(open(path, encoding='utf-8'))
    out = set()
    for p, item in (doc.get('paths') or {}).items():
        for m in METHODS:
            for code in ((item.get(m) or {}).get('responses') or {}):
                out.add((m.upper(), p, str(code)))
    for code in ((doc.get('x-payq-unmatched') or {}).get('responses') or {}):
        out.add(('*', '*', str(code)))
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    parser = 'tiny'
    if len(sys.argv) == 4 and sys.argv[2] == '--parser':
        parser = sys.argv[3]
    rows = with_yaml(sys.argv[1]) if parser == 'yaml' else tiny(sys.argv[1])
    for method, path, code in sorted(rows):
        print('%s %s %s' % (method, path, code))
    return 0


if __name__ == '__main__':
    sys.exit(main())
