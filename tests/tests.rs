mod golden_xml;
