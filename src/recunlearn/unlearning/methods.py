"""Imports every unlearning method module so that each registers itself (one line per method)."""
from . import no_unlearning  # noqa: F401
from . import unlearnrec_method  # noqa: F401
from . import finetune  # noqa: F401
from . import reverse_bpr  # noqa: F401
from . import gif  # noqa: F401
from . import sisa  # noqa: F401
from . import receraser  # noqa: F401
from . import gnndelete  # noqa: F401
from . import d2dgn  # noqa: F401
