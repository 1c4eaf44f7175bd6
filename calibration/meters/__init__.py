"""Energy meters, one module per energy source, all behind `common.EnergyMeter`."""
