"""Stage 1: the matrix's rules, interpreted.

One interpreter of the declared data, used by both the loader's cross-checks
(does a profile's ``supported`` list follow the backends' rules?) and the
oracle (what must the selection do?):

* :mod:`harness.rules.support`: a backend's support rules and ``implements``
  block against a platform and a layer.
* :mod:`harness.rules.environment`: how the precedence table reads a variable's
  value (its own copy of the accepted spellings: nothing is imported from the
  code under test).
"""

from harness.rules.environment import InvalidValue, parse_flag, parse_list
from harness.rules.support import Verdict, implements_verdict, rule_verdict, support_verdict

__all__ = [
    "InvalidValue",
    "Verdict",
    "implements_verdict",
    "parse_flag",
    "parse_list",
    "rule_verdict",
    "support_verdict",
]
