"""kubeflow-modelkit-lab: a complete Kubeflow + KitOps lab on one machine, with a doctor."""

__version__ = "0.1.0"
