mod golden_csv;
