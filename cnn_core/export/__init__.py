"""A run taken elsewhere.

    formats     ONNX, torch.export's .pt2 and TorchScript, each checked against PyTorch
    standalone  the run as one file of plain PyTorch that trains it again
"""
