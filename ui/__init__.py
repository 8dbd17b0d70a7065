"""Gradio tab builders: one module per tab, each wiring components to routing/ and training/."""
