"""The docs stay true and self-contained: the defaults table of docs/algorithms.md matches
arguments.py, every relative link resolves inside the repo, and no text sends a reader to a file
outside it."""
import os
import re

import pytest

from arguments import get_args
from utils.os_utils import str2bool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALGORITHMS = os.path.join(ROOT, 'docs', 'algorithms.md')

# Row of the defaults table (its first cell) -> train.py command lines the row's defaults hold for.
# Flags given on a command line are skipped for it: the row documents defaults, not choices.
ROW_CONFIGS = {
    'every configuration': [[], ['--env', 'Hopper-v2', '--alg', 'sac']],
    'actor-critic: DDPG, TD3, SAC': [['--alg', 'td3']],
    'DDPG': [['--alg', 'ddpg'], ['--alg', 'rrd', '--basis_alg', 'ddpg']],
    'TD3': [['--alg', 'td3'], ['--alg', 'rrd', '--basis_alg', 'td3']],
    'SAC': [['--alg', 'sac'], ['--alg', 'rrd', '--basis_alg', 'sac']],
    'DQN (any discrete env)': [['--env', 'CartPole-v1', '--alg', 'dqn'], ['--env', 'Pong', '--alg', 'dqn']],
    'DQN with `--optimizer rmsprop`': [['--env', 'CartPole-v1', '--alg', 'dqn', '--optimizer', 'rmsprop']],
    'Atari (any game)': [['--env', 'Pong', '--alg', 'dqn'], ['--env', 'Assault', '--alg', 'rrd']],
    'RRD': [['--env', 'Hopper-v2', '--alg', 'rrd'], ['--env', 'CartPole-v1', '--alg', 'rrd']],
    'RRD on Atari': [['--env', 'Pong', '--alg', 'rrd']],
    'IRCR on MuJoCo': [['--env', 'Hopper-v2', '--alg', 'ircr'],
                       ['--env', 'Hopper-v2', '--alg', 'ircr', '--basis_alg', 'ddpg']],
    'IRCR over SAC on Humanoid': [['--env', 'Humanoid-v2', '--alg', 'ircr']],
}
PROSE_ROWS = ('RRD and IRCR',)  # no single default to check; see test_basis_alg_default


def defaults_table():
    """{first cell: [(flag, documented default)]} of the table in section 3."""
    with open(ALGORITHMS) as file:
        section = file.read().split('## 3.')[1].split('\n## ')[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
        if len(cells) == 2 and '--' in cells[1] and not cells[0].startswith('-'):
            rows[cells[0]] = re.findall(r'`--(\w+) ([^`]*)`', cells[1])
    return rows


def same_value(documented, actual):
    if documented in ("''", '""'):
        documented = ''
    if isinstance(actual, bool):
        return str2bool(documented) == actual
    if isinstance(actual, (int, float)):
        return float(documented) == float(actual)
    return documented == str(actual)


def test_every_row_of_the_defaults_table_is_checked():
    rows = defaults_table()
    checked = set(ROW_CONFIGS) | {row for row in rows if row.startswith(PROSE_ROWS)}
    assert set(rows) == checked, 'give each new row of the table its command lines in ROW_CONFIGS'


@pytest.mark.parametrize('row', sorted(ROW_CONFIGS))
def test_documented_defaults_match_the_parser(row):
    documented = defaults_table()[row]
    assert documented, f'no `--flag value` pairs found in row {row!r}'
    for argv in ROW_CONFIGS[row]:
        args = vars(get_args(argv))
        for flag, value in documented:
            if f'--{flag}' in argv:
                continue
            assert flag in args, f'{row}: --{flag} is not a flag of `train.py {" ".join(argv)}`'
            assert same_value(value, args[flag]), \
                f'{row}: docs say --{flag} {value}, `train.py {" ".join(argv)}` defaults to {args[flag]!r}'


def test_basis_alg_default():
    assert get_args(['--env', 'Hopper-v2', '--alg', 'rrd']).basis_alg == 'sac'
    assert get_args(['--env', 'Pong', '--alg', 'ircr']).basis_alg == 'dqn'


def test_flags_named_in_the_docs_exist():
    """Every `--flag` of docs/algorithms.md and of README's train.py command lines is a train.py flag."""
    known = set()
    for configs in ROW_CONFIGS.values():
        for argv in configs:
            known |= set(vars(get_args(argv)))
    with open(ALGORITHMS) as file:
        named = set(re.findall(r'`--(\w+)', file.read()))
    with open(os.path.join(ROOT, 'README.md')) as file:
        for line in file:
            if re.match(r'\s*(\w+=\S+\s+)*python3? train\.py', line):
                named |= set(re.findall(r'--(\w+)', line.split('#')[0]))
    assert named, 'no flags found in the docs'
    assert not named - known, f'not flags of train.py: {sorted(named - known)}'


def markdown_files():
    paths = [os.path.join(ROOT, name) for name in ('README.md', 'MIGRATION.md')]
    for folder, _, names in os.walk(os.path.join(ROOT, 'docs')):
        paths += [os.path.join(folder, name) for name in names if name.endswith('.md')]
    return paths


@pytest.mark.parametrize('path', markdown_files(), ids=lambda path: os.path.relpath(path, ROOT))
def test_relative_links_resolve_inside_the_repo(path):
    with open(path) as file:
        targets = re.findall(r'\]\(([^)\s]+)\)', file.read())
    for target in targets:
        if re.match(r'[a-z]+:', target) or target.startswith('#'):
            continue
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target.split('#')[0]))
        assert resolved.startswith(ROOT + os.sep), f'{target} points outside the repo'
        assert os.path.exists(resolved), f'{os.path.relpath(path, ROOT)} links to missing {target}'


def test_no_text_points_outside_the_repo():
    """Readers of the repo have nothing but the repo: docs and docstrings cite docs/algorithms.md."""
    outside = re.compile(r'\.\./shared|SPEC(\.md| section)')
    offenders = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [name for name in dirs if not name.startswith('.') and name not in ('log', '__pycache__')]
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(('.md', '.py', '.txt')) and path != os.path.abspath(__file__):
                with open(path, errors='replace') as file:
                    offenders += [f'{os.path.relpath(path, ROOT)}:{number}'
                                  for number, line in enumerate(file, 1) if outside.search(line)]
    assert not offenders, offenders
