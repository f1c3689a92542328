"""The Home page:
    page          what the product does, the datasets with Prepare, recent runs, where to go next
    state         every session-state and widget key of the page
    own_pictures  Your own pictures: add a dataset (preview, add), rename and delete the added ones"""
