"""mdpl: multi-task differentiable parameter learning for land surface models.

Data flows one way: ``mdpl.data`` -> ``mdpl.ils`` -> ``mdpl.ensemble`` ->
``mdpl.models`` -> ``mdpl.calibrate`` -> ``mdpl.evaluate`` -> ``mdpl.plots``.
"""

from mdpl.errors import ConfigError, DataError, MdplError, ModelError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataError", "MdplError", "ModelError", "__version__"]
