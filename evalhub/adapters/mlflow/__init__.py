"""The parts of the MLflow state store (evalhub/adapters/mlflow_store.py):

boundary       which store a URI names; importing MLflow quietly; error translation
runs           MLflow runs -> RecordedRuns, and the rules both readers share
sql_reader     reads MLflow's tables directly (sqlite, postgresql, mysql, mssql)
search_reader  reads through MLflow's search API (tracking servers)
values         fitting names and values into MLflow's limits
"""
