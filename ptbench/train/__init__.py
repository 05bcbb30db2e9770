"""The one trainer every trial uses, and the assembly of a trial from the registries."""
