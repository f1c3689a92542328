"""The Draw page:
    page          draw or upload a digit, the chosen run's answer, every run's, Classify many
    state         every session-state and widget key of the page
    widgets       the canvas, the upload, the model picker, the cached models, the answer's charts"""
